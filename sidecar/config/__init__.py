"""Typed settings from one YAML file: validated at start, with errors that name the file and the field.

Credentials never live in the file: a provider names the environment variable that holds its key
(`api_key_env`), read once at load. Nothing here touches the network. The result is a frozen
`Config` of domain objects and specs; the rest of the sidecar never sees YAML.

    load.py       file -> FileSettings (validated) -> Config; error messages that name each field
    settings.py   the file's schema (FileSettings) and the small sections (resilience, cache, shadow)
    server.py     `server:`: listeners, TLS, auth, what may be exposed beyond loopback
    telemetry.py  `telemetry:`: exporters, sampling, the request log, Prometheus
    models.py     `providers:` and `models:`
    routes.py     `routes:`: strategies and execution settings, converted to the policy's RouteSpec
    common.py     the error, the strict base model, name and number bounds

What the config produces is owned by the package that reads it: the route specs by the policy
(policy/specs.py), the shadow specs by the domain (domain/shadow.py), provider limits by admission.
The config imports them, never the reverse, so that no package's runtime depends on pydantic or YAML.
"""

from sidecar.config.common import ConfigError
from sidecar.config.load import Config, load_config, parse_config
from sidecar.config.server import ServerSettings, exposure_problems, is_loopback
from sidecar.config.settings import FileSettings
from sidecar.config.telemetry import TelemetrySettings

__all__ = [
    "Config",
    "ConfigError",
    "FileSettings",
    "ServerSettings",
    "TelemetrySettings",
    "exposure_problems",
    "is_loopback",
    "load_config",
    "parse_config",
]
