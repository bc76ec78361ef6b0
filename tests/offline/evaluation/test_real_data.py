"""The shared RouterBench subset: gpt-4-1106-preview vs mixtral-8x7b on the test split, deduplicated.

Skipped in a clone without ../shared/data next to the repository.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sidecar.cli import main
from sidecar.offline.evaluation.run import PAIR_ROLES, EvalOptions, evaluate
from tests.offline.evaluation.conftest import require_shared_data

STRONG, WEAK = "gpt-4-1106-preview", "mistralai/mixtral-8x7b-chat"


def test_test_split_deduplicated_against_train_reports_baselines() -> None:
    data = require_shared_data()
    report = evaluate(
        EvalOptions(
            dataset=data, split="test", dedupe_against=(data,), router="length", strong=STRONG, weak=WEAK
        )
    )
    assert report.deduplicated == 8  # 6 ARC and 2 MBPP questions also in train (the data's README)
    assert report.rows == 945
    assert report.pair is not None
    assert report.pair.rows == 944  # one row has no score for either model
    results = dict(zip(PAIR_ROLES, report.pair.results, strict=True))
    assert 0.45 <= results["random"].apgr <= 0.55
    # Deterministic baselines: the numbers quoted in docs/evaluation.md.
    assert results["length"].apgr == pytest.approx(0.4365, abs=5e-4)
    assert results["oracle"].apgr == pytest.approx(1.1600, abs=5e-4)
    assert results["oracle"].cost_at_95 == pytest.approx(0.134, abs=5e-4)


def test_cli_on_the_real_data_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = require_shared_data()
    out = tmp_path / "r.json"
    split = ["--split", "test", "--dedupe-against", str(data)]
    args = ["eval", str(data), *split, "--strong", STRONG, "--weak", WEAK]
    assert main([*args, "--router", "builtin:length", "--json", str(out)]) == 0
    assert "builtin:length (under test)" in capsys.readouterr().out
    routers = {r["role"]: r for r in json.loads(out.read_text())["pair"]["routers"]}
    assert 0.45 <= routers["random"]["apgr"] <= 0.55
    assert routers["length"]["apgr"] < routers["oracle"]["apgr"]
