"""Validate the Turnout configs a rendered chart ships: every ConfigMap with a turnout.yaml key in the
given manifests is loaded by the sidecar's own config loader (sidecar.config.parse_config), so a
values example or the demo config that the sidecar would refuse at start fails `make helm-check`.

Keys are never in the config: each provider's api_key_env gets a placeholder in the environment the
loader sees, which only says the variable would be set (the chart takes it from a Secret).

    python scripts/chart_configs.py RENDERED.yaml [...]
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from sidecar.config import ConfigError, parse_config


def main(paths: list[str]) -> int:
    checked = failed = 0
    for path in paths:
        for doc in yaml.safe_load_all(Path(path).read_text()):
            if not doc or doc.get("kind") != "ConfigMap" or "turnout.yaml" not in (doc.get("data") or {}):
                continue
            raw = yaml.safe_load(doc["data"]["turnout.yaml"])
            providers = raw.get("providers", [])
            env = {p["api_key_env"]: "set-from-a-secret" for p in providers if p.get("api_key_env")}
            where = f"{path}: ConfigMap {doc['metadata']['name']}"
            try:
                config = parse_config(raw, source=where, env=env)
            except ConfigError as error:
                print(f"   FAIL: {error}")
                failed += 1
                continue
            checked += 1
            print(f"   ok: {where}: {len(config.registry.models)} models, {len(config.routes)} routes")
    if not checked and not failed:
        print("   FAIL: no ConfigMap with a turnout.yaml in", " ".join(paths))
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
