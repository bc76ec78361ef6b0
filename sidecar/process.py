"""The `turnout serve` process: start the sidecar, reload on change or SIGHUP, stop on SIGTERM.

Also what the process tunes for a long-lived server: the garbage collector (decision 006).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from collections.abc import Callable

from sidecar.app import ListenOverrides, Sidecar
from sidecar.config import (
    Config,
)
from sidecar.reload import ConfigWatcher

log = logging.getLogger(__name__)


async def serve_until_signalled(
    config: Config,
    overrides: ListenOverrides,
    announce: Callable[[str], None] = print,
    reload_interval_s: float | None = None,
) -> None:
    """`turnout serve`: start, wait for SIGTERM/SIGINT, stop.

    While serving, the config file is reloaded when its content changes (polled every
    `reload_interval_s`, default server.reload_interval_s) and on SIGHUP. On SIGTERM/SIGINT the
    sidecar stops accepting, lets in-flight requests finish within server.shutdown_grace_s, and
    returns, so the process exits 0.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    sidecar = Sidecar(config, overrides)
    watcher = ConfigWatcher(
        config.source,
        sidecar.reload,
        interval_s=config.server.reload_interval_s if reload_interval_s is None else reload_interval_s,
        follow_config_interval=reload_interval_s is None,
    )
    try:
        await sidecar.start()
        _freeze_startup_heap()
        watcher.start()  # before the announcement: once it is out, SIGHUP reloads
        try:
            where = sidecar.address + (
                f" and unix:{sidecar.server.unix_socket}" if sidecar.server.unix_socket else ""
            )
            if sidecar.http is not None:  # before the line below, which tools wait for
                announce(f"turnout: OpenAI- and Anthropic-compatible HTTP API at {sidecar.http.url}/v1")
            announce(
                f"turnout: listening on {where} (config {config.source}); SIGTERM or Ctrl-C stops, "
                "SIGHUP reloads the config"
            )
            await stop.wait()
        finally:
            await watcher.stop()
        grace = sidecar.config.server.shutdown_grace_s
        announce(f"turnout: stopping; in-flight requests have {grace:g}s to finish")
        await sidecar.stop()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


def _freeze_startup_heap() -> None:
    """Move everything built at start (modules, registry, tokenizers, the OTel SDK) out of the
    cyclic garbage collector's sight, so that a full collection scans only what requests made:
    a scan of the whole startup heap stops the event loop long enough to show in p99.

    Objects frozen here are still freed by reference counting; only cyclic garbage among them
    (a config replaced by a reload, say) is kept, which is small and rare. Then the youngest
    generation's threshold is raised (GC_YOUNG_THRESHOLD, below). Decision 006.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


# The youngest generation is collected after this many more container objects were made than
# freed (CPython's default: 700). A request's objects mostly die by reference counting within
# milliseconds, but many requests in flight keep thousands alive, and at 700 each collection
# scanned them all, every few requests. Decision 006.
GC_YOUNG_THRESHOLD = 10_000
