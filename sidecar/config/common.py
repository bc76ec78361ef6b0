"""What every config section shares: the error, the strict base model, the name and number bounds."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

NAME = r"^[A-Za-z0-9][A-Za-z0-9._:/@-]{0,127}$"
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
# ListModels carries token counts as int32 and prices as int64 usd_nanos; a million USD per
# million tokens, times 2^31 tokens, still fits an int64 of usd_nanos.
MAX_TOKENS = 2**31 - 1
MAX_USD_PER_MTOK = 1_000_000


class ConfigError(Exception):
    """An invalid config file; the message names the file, each bad field and what is wrong."""


class Strict(BaseModel):
    # NaN and Infinity are refused in every number: a NaN passes no bound, and an infinite price or
    # timeout would only fail later, converted to an integer or a deadline.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
