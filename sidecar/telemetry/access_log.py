"""The request log's handler: JSON lines written in blocks, flushed at least once a second and at exit."""

from __future__ import annotations

import io
import logging
import os
import threading
from typing import TextIO

FLUSH_EVERY_S = 1.0
BUFFER_BYTES = 64 * 1024


class BufferedLines(logging.StreamHandler):  # type: ignore[type-arg]
    """A StreamHandler that does not flush after every record.

    It writes to its own buffered file on the stream's descriptor when it has one (so the
    process's stderr keeps its own line buffering for everything else). A daemon thread flushes
    every second, so a quiet sidecar's last lines are never held for long; `close` (logging's
    shutdown at exit, or a reconfiguration) flushes the rest.
    """

    def __init__(self, stream: TextIO) -> None:
        own = _buffered(stream)
        super().__init__(own)
        self._own = own if own is not stream else None  # ours to close; the caller's stream is not
        self._stop = threading.Event()
        self._flusher = threading.Thread(
            target=self._flush_periodically, name="turnout-access-log", daemon=True
        )
        self._flusher.start()

    def write_line(self, line: str) -> None:
        """Write one line without building a LogRecord (what `emit` of a formatted record does)."""
        with self.lock:  # type: ignore[union-attr]
            self.stream.write(line + "\n")

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.stream.write(self.format(record) + "\n")
        except Exception:  # noqa: BLE001 - logging's own convention: report, never raise
            self.handleError(record)

    def _flush_periodically(self) -> None:
        while not self._stop.wait(FLUSH_EVERY_S):
            self.flush()

    def close(self) -> None:
        self._stop.set()
        if self._flusher is not threading.current_thread():
            self._flusher.join(timeout=2 * FLUSH_EVERY_S)  # no flush of a closed file after this
        self.flush()
        super().close()
        if self._own is not None:
            self._own.close()
            self._own = None


def _buffered(stream: TextIO) -> TextIO:
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, io.UnsupportedOperation):  # e.g. a StringIO in a test
        return stream
    return os.fdopen(os.dup(fd), "w", buffering=BUFFER_BYTES, encoding="utf-8")


def write(logger: logging.Logger, line: str) -> None:
    """Send one line to the request log: straight to our handler when it is the only one (the
    common case, set up by `turnout serve`), else through logging for whatever handlers are there."""
    handlers = logger.handlers
    if len(handlers) == 1 and not logger.propagate and type(handlers[0]) is BufferedLines:
        handlers[0].write_line(line)
    elif logger.isEnabledFor(logging.INFO):
        logger.info(line)
