"""The official openai Node SDK's tests (tests/http_api/node, `node --test`) against the live sidecar.

The Node test lives beside the Python ones rather than under clients/: it tests the sidecar's
HTTP front door with a third-party SDK, not a Turnout client package. Its SDK is pinned by
node/package-lock.json and installed by `make test` (the Makefile's NODE_SDK target).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.http_api.conftest import Front

NODE_TESTS = Path(__file__).parent / "node"


def test_the_openai_node_sdk(front: Front) -> None:
    node = shutil.which("node")
    assert node is not None, "Node.js 20+ is needed for this test (the machine's `node`)"
    assert (NODE_TESTS / "node_modules" / "openai").is_dir(), (
        "the openai Node SDK is not installed: run `make test` (or npm ci --prefix tests/http_api/node)"
    )
    result = subprocess.run(
        [node, "--test", "--test-reporter=spec", str(NODE_TESTS / "openai.test.mjs")],
        env={**os.environ, "TURNOUT_HTTP_URL": front.url, "TURNOUT_SIM_URL": front.sim_url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ℹ fail 0" in result.stdout, result.stdout
    assert "ℹ pass 0" not in result.stdout, result.stdout  # it ran some
