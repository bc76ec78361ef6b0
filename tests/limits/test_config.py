"""The `limits:` section: the README's example loads, and mistakes are named with their field."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from sidecar.config import ConfigError, parse_config
from sidecar.limits.budgets import Scope, SoftAction
from sidecar.limits.windows import Period
from tests.conftest import EXAMPLE_CONFIG

EXAMPLE = EXAMPLE_CONFIG.parent / "budgets.yaml"
ENV = {"TURNOUT_REDIS_PASSWORD": "s3cret-redis"}


def with_limits(limits: Any) -> dict[str, Any]:
    raw = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    raw["limits"] = limits
    return raw


def test_the_readme_example_loads() -> None:
    config = parse_config(with_limits(yaml.safe_load(EXAMPLE.read_text())["limits"]), source="x", env=ENV)
    fleet, team, tenant = config.budgets
    assert (fleet.scope, fleet.window.period, fleet.window.timezone) == (
        Scope.DEPLOYMENT,
        Period.MONTH,
        "Europe/Berlin",
    )
    assert (team.scope, team.label, team.on_soft, team.cheaper_max_quality) == (
        Scope.LABEL, "team", SoftAction.CHEAPER, 0.75,
    )  # fmt: skip
    assert (tenant.scope, tenant.window.period, tenant.window.rolling_s) == (
        Scope.TENANT,
        Period.ROLLING,
        3600,
    )
    assert team.limit_usd_nanos == 200_000_000_000
    assert config.store_password is not None
    assert config.store_password.reveal() == "s3cret-redis"
    assert "s3cret" not in repr(config)
    assert config.limits.store.share_rates
    (cap,) = config.escalation_caps
    assert (cap.route, cap.above_quality, cap.max_share, cap.window.period) == (
        "default",
        0.8,
        0.15,
        Period.HOUR,
    )


@pytest.mark.parametrize(
    ("limits", "env", "message"),
    [
        ({"store": {"redis_url": "redis://:pw@host:6379"}}, {}, "holds a password"),
        ({"store": {"redis_url": "http://host"}}, {}, "must start with redis://"),
        ({"store": {"redis_url": "redis://h", "password_env": "NOPE"}}, {}, "NOPE is not set"),
        ({"store": {"share_rates": True}}, {}, "share_rates: needs redis_url"),
        ({"store": {"share_health": True}}, {}, "share_health: needs redis_url"),
        ({"budgets": [{"name": "b", "usd": 1, "timezone": "Mars/Olympus"}]}, {}, "unknown time zone"),
        (
            {"budgets": [{"name": "b", "usd": 1, "per": "team"}]},
            {},
            "limits.budgets[0] (b).per: 'team': one of deployment",
        ),
        ({"budgets": [{"name": "b", "usd": 0}]}, {}, "limits.budgets[0] (b).usd"),
        ({"budgets": [{"name": "b", "usd": 1}, {"name": "b", "usd": 2}]}, {}, "'b' is used more than once"),
        (
            {"escalation": [{"route": "nowhere", "above_quality": 0.8, "max_share": 0.1}]},
            {},
            "limits.escalation[0].route: unknown route 'nowhere'",
        ),
    ],
)
def test_mistakes_are_named(limits: Any, env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_config(with_limits(limits), source="x", env=env)
