"""The API's compatibility guard: `make check` runs `buf breaking` against the released v1 API
(proto/breaking-baseline.binpb), so that a wire- or source-incompatible change fails CI. These tests
show that it does, on copies of the proto with one such change each."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUF = ROOT / "tools" / "buf" / "node_modules" / ".bin" / "buf"
BASELINE = ROOT / "proto" / "breaking-baseline.binpb"
pytestmark = pytest.mark.skipif(not BUF.exists(), reason="buf is installed by `make lint-proto` (tools/buf)")


def breaking(tmp_path: Path, edit: tuple[str, str] | None) -> subprocess.CompletedProcess[str]:
    proto = tmp_path / "proto"
    shutil.copytree(ROOT / "proto", proto, ignore=shutil.ignore_patterns("*.binpb", "*.yaml"))
    shutil.copy(ROOT / "proto" / "buf.yaml", proto / "buf.yaml")
    router = proto / "turnout" / "v1" / "router.proto"
    if edit is not None:
        old, new = edit
        text = router.read_text()
        assert text.count(old) == 1, old
        router.write_text(text.replace(old, new))
    return subprocess.run(
        [str(BUF), "breaking", "--against", str(BASELINE)],
        cwd=proto,
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_current_api_is_compatible_with_the_released_one(tmp_path):
    run = breaking(tmp_path, None)
    assert run.returncode == 0, run.stdout + run.stderr


def test_an_added_field_is_compatible(tmp_path):
    run = breaking(
        tmp_path, ("message ListModelsRequest {}", "message ListModelsRequest {\n  string filter = 1;\n}")
    )
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.mark.parametrize(
    ("edit", "complaint"),
    [
        (
            ("  int64 cost_usd_nanos = 4;\n  // The model", "  int64 cost_usd_nanos = 40;\n  // The model"),
            "cost_usd_nanos",
        ),
        (("  int64 total_cost_usd_nanos = 11;", "  double total_cost_usd_nanos = 11;"), "type"),
        (("  rpc ListModels(ListModelsRequest) returns (ListModelsResponse);\n", ""), "ListModels"),
        (
            (
                'option go_package = "github.com/turnout-router/turnout/clients/go/turnout/v1;turnoutv1";',
                'option go_package = "example.com/elsewhere;v1";',
            ),
            "go_package",
        ),
    ],
    ids=["renumbered field", "changed type", "removed rpc", "moved Go package"],
)
def test_an_incompatible_change_fails(tmp_path, edit, complaint):
    run = breaking(tmp_path, edit)
    assert run.returncode != 0
    assert complaint in run.stdout + run.stderr
