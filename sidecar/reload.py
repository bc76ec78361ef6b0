"""Hot reload of the config file: notice a change (content hash polling or SIGHUP), reload, log the outcome.

What a reload does is the caller's (`Sidecar.reload`: load, validate, build, swap); this module
decides when to call it and says what happened, in one log line per attempt:

    config reloaded: /etc/turnout/turnout.yaml (sha256 3f2a...): models 9 -> 8 (1 removed), ...
    config reload rejected: /etc/turnout/turnout.yaml: invalid config: models[2] (x).price.input: ...;
        still serving the config loaded at 2025-06-01T12:00:00+00:00 (sha256 3f2a...)

Change detection compares a hash of the content, not the mtime: a Kubernetes ConfigMap update
swaps a symlink (the new file may carry any mtime), and an mtime can tick without the content
changing. A polled change is acted on once the content has stayed the same for one interval, so a
file that an editor or `kubectl cp` writes in several steps is not loaded half-written. SIGHUP
reloads at once, whatever the content. A rejected file is not retried until its content changes
again (or SIGHUP asks).

The file is read on the event loop: config files are small, and reading them synchronously keeps a
reload free of awaits, so that nothing interleaves with it (see `Sidecar.reload`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sidecar.config import Config, ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ReloadResult:
    config: Config  # now in effect
    previous: Config
    # Restart-only settings the new file changes, kept at their running values: "server.port (1 -> 2)".
    restart_required: tuple[str, ...] = ()

    def summary(self) -> str:
        """What changed, in counts: 'models 9 -> 8 (1 removed), providers 4, routes 2'."""
        return ", ".join(
            _count_change(section, set(before), set(after))
            for section, before, after in (
                (
                    "models",
                    (m.name for m in self.previous.registry.models),
                    (m.name for m in self.config.registry.models),
                ),
                ("providers", self.previous.providers, self.config.providers),
                ("routes", self.previous.routes, self.config.routes),
            )
        )


Reload = Callable[[Path], ReloadResult]


class ConfigWatcher:
    """Reloads `path` when its content changes (polled every `interval_s`; 0 disables) and on SIGHUP.

    `start()` with a loop running, `await stop()` at shutdown. `reload_now()` is what SIGHUP does,
    callable directly. With `follow_config_interval`, a reloaded server.reload_interval_s applies.
    """

    def __init__(
        self,
        path: str | Path,
        reload: Reload,
        *,
        interval_s: float = 1.0,
        follow_config_interval: bool = False,
        sighup: bool = True,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self.interval_s = interval_s
        self._reload = reload
        self._follow_config_interval = follow_config_interval
        self._sighup = sighup
        self._wall_clock = wall_clock
        # The running config was loaded from this file just before the watcher was made; a change
        # in between goes unnoticed until the next change or SIGHUP.
        self._serving_digest = _digest(self.path)
        self._serving_since = wall_clock()
        self._seen = self._serving_digest  # the last content acted on, loaded or rejected
        self._pending: str | None = None  # a new content seen once by polling, not yet acted on
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        assert self._task is None, "already started"
        loop = asyncio.get_running_loop()
        if self._sighup:
            loop.add_signal_handler(signal.SIGHUP, self.trigger)
        self._loop = loop
        self._task = loop.create_task(self._run(), name=f"config watcher {self.path}")

    async def stop(self) -> None:
        if self._loop is not None and self._sighup:
            self._loop.remove_signal_handler(signal.SIGHUP)
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def trigger(self) -> None:
        """Reload as soon as the loop runs the watcher (the SIGHUP handler)."""
        self._wake.set()

    def reload_now(self) -> bool:
        """Reload the file whatever its content; True if its content is now what serves."""
        return self._attempt(_digest(self.path))

    async def _run(self) -> None:
        while True:
            try:
                async with asyncio.timeout(self.interval_s or None):
                    await self._wake.wait()
            except TimeoutError:
                self._poll()
            else:
                self._wake.clear()
                self.reload_now()

    def _poll(self) -> None:
        digest = _digest(self.path)
        if digest == self._seen:
            self._pending = None
        elif digest != self._pending:
            self._pending = digest  # changed since the last look: let it settle for one interval
        else:
            self._attempt(digest)

    def _attempt(self, digest: str) -> bool:
        self._seen, self._pending = digest, None
        try:
            result = self._reload(self.path)
        except ConfigError as exc:
            log.error(
                "config reload rejected: %s; still serving the config loaded at %s (sha256 %s)",
                _one_line(str(exc)),
                self._serving_time(),
                self._serving_digest[:12],
            )
            return False
        except Exception as exc:  # a bug in building the runtime must not end the watcher or the server
            log.error(
                "config reload failed: %s: %s: %s; still serving the config loaded at %s (sha256 %s)",
                self.path,
                type(exc).__name__,
                exc,
                self._serving_time(),
                self._serving_digest[:12],
                exc_info=exc,
            )
            return False
        self._serving_digest, self._serving_since = digest, self._wall_clock()
        log.info("config reloaded: %s (sha256 %s): %s", self.path, digest[:12], result.summary())
        interval = result.config.server.reload_interval_s
        if self._follow_config_interval and interval != self.interval_s:
            self.interval_s = interval
            if interval:
                log.info("config reload: polling %s every %gs now", self.path, interval)
            else:
                log.info("config reload: polling %s is off now; SIGHUP reloads", self.path)
        return True

    def _serving_time(self) -> str:
        return datetime.fromtimestamp(self._serving_since).astimezone().isoformat(timespec="seconds")


def _digest(path: Path) -> str:
    """The sha256 of the file's content (following symlinks), or a marker naming why it is unreadable."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        return f"unreadable ({exc.strerror or exc})"


def _one_line(message: str) -> str:
    """ConfigError messages list one field per line; a log line keeps them on one, '; '-separated."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    if not lines:
        return message
    head, rest = lines[0], lines[1:]
    if head.endswith(":") and rest:
        return f"{head} {'; '.join(rest)}"
    return "; ".join(lines)


def _count_change(section: str, before: set[str], after: set[str]) -> str:
    """'models 9 -> 8 (1 removed)', 'routes 2', or 'models 9 (1 added, 1 removed)' for a swap."""
    text = (
        f"{section} {len(before)} -> {len(after)}" if len(before) != len(after) else f"{section} {len(after)}"
    )
    details = []
    if added := len(after - before):
        details.append(f"{added} added")
    if removed := len(before - after):
        details.append(f"{removed} removed")
    return f"{text} ({', '.join(details)})" if details else text
