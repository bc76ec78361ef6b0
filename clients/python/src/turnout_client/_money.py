"""Money on the wire is an integer of nano-dollars (1 USD = 1,000,000,000); this formats it exactly."""

from __future__ import annotations

NANOS_PER_USD = 1_000_000_000


def format_usd(nanos: int) -> str:
    """`12345` -> `"$0.000012345"`, `1500000000` -> `"$1.50"`: every significant digit, at least
    two decimals, no float on the way (so a sum of costs prints exactly what it is)."""
    sign = "-" if nanos < 0 else ""
    dollars, fraction = divmod(abs(nanos), NANOS_PER_USD)
    decimals = f"{fraction:09d}".rstrip("0").ljust(2, "0")
    return f"{sign}${dollars}.{decimals}"
