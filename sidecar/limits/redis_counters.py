"""Counters shared by every pod through one Redis, with a local fallback while Redis is unreachable.

    charge (hot path):           far from every limit (by a view of Redis younger than `fresh_s`,
                                 below 1 - `exact_within` of each limit) an `add`, not awaited;
                                 else one EVALSHA of CHARGE, awaited: check every total, add to
                                 each, atomically; the charges made while one round trip is out
                                 share the next one (a pipeline), so a burst costs round trips,
                                 not connections
    add    (not awaited):        into `pending`; a flusher task sends it in batches (FLUSH)
    exchange (a heartbeat's):    one EXCHANGE: this pod's rate demand in, every live pod's out
                                 (limits/rates.py); never on the request path
    breakers (a heartbeat's):    one BREAKERS: the breakers this pod opened in, every pod's
                                 recent openings out (limits/health.py)
    Redis down:                  charge decides locally on this pod's share, adds to `pending`;
                                 the flusher probes and, when Redis answers, sends `pending`: the
                                 counts made meanwhile are reconciled, none is lost

Why it is safe to resend: a batch carries this pod's sequence number, and FLUSH applies a number
only once (a batch whose reply was lost is resent as it was). Why a restart with an empty Redis
does not reset the limits: each counter is sent with the last value this pod saw ("floor"); a
missing counter is recreated from it before anything is added. Decision 060 has the bounds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError, RedisError

from sidecar.limits.counters import Claim, Verdict, first_refused

log = logging.getLogger(__name__)

# KEYS: every claim's counters, claim after claim.
# ARGV: amount, number of claims; per claim: its number of keys, limit (-1: none), ttl ms;
#       then per key: its floor.
# Returns {refused claim (1-based) or 0, every counter's value after the charge...}.
CHARGE = """
local amount = tonumber(ARGV[1])
local nclaims = tonumber(ARGV[2])
local floors = 3 + 3 * nclaims
local values, firsts, ttls = {}, {}, {}
local refused, k = 0, 0
for c = 1, nclaims do
  local n = tonumber(ARGV[3 * c])
  local limit = tonumber(ARGV[3 * c + 1])
  ttls[c] = ARGV[3 * c + 2]
  firsts[c] = k + 1
  local total = 0
  for _ = 1, n do
    k = k + 1
    local raw = redis.call('GET', KEYS[k])
    local v = tonumber(raw or '0')
    local floor = tonumber(ARGV[floors + k - 1])
    if not raw and floor > 0 then
      redis.call('SET', KEYS[k], floor, 'PX', ttls[c])
      v = floor
    end
    values[k] = v
    total = total + v
  end
  if refused == 0 and limit >= 0 and total >= limit then refused = c end
end
if refused == 0 and amount ~= 0 then
  for c = 1, nclaims do
    local key = KEYS[firsts[c]]
    values[firsts[c]] = redis.call('INCRBY', key, amount)
    redis.call('PEXPIRE', key, ttls[c])
  end
end
table.insert(values, 1, refused)
return values
"""

# KEYS[1]: this pod's last applied batch number; KEYS[2..]: counters.
# ARGV: batch number, its ttl ms; then per counter: amount, ttl ms, floor.
# Returns every counter's value after the batch.
FLUSH = """
local seq = tonumber(ARGV[1])
local fresh = seq > tonumber(redis.call('GET', KEYS[1]) or '0')
if fresh then redis.call('SET', KEYS[1], seq, 'PX', ARGV[2]) end
local out = {}
for i = 2, #KEYS do
  local b = 3 * i - 3
  if fresh then
    local floor = tonumber(ARGV[b + 2])
    if floor > 0 and redis.call('EXISTS', KEYS[i]) == 0 then
      redis.call('SET', KEYS[i], floor, 'PX', ARGV[b + 1])
    end
    redis.call('INCRBY', KEYS[i], ARGV[b])
    redis.call('PEXPIRE', KEYS[i], ARGV[b + 1])
  end
  out[i - 1] = tonumber(redis.call('GET', KEYS[i]) or '0')
end
return out
"""

# KEYS: the demand hash. ARGV: this pod's id, its demand (JSON), how old (ms) a pod's entry may be.
# Returns {pod, demand, pod, demand...} for every pod whose entry is fresh (by Redis's clock, so the
# pods' clocks need not agree); stale entries (a pod gone) are dropped.
EXCHANGE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local stale = tonumber(ARGV[3])
redis.call('HSET', KEYS[1], ARGV[1], now .. ' ' .. ARGV[2])
redis.call('PEXPIRE', KEYS[1], 10 * stale)
local all = redis.call('HGETALL', KEYS[1])
local out = {}
for i = 1, #all, 2 do
  local at, demand = string.match(all[i + 1], '^(%d+) (.*)$')
  if at == nil or now - tonumber(at) > stale then
    redis.call('HDEL', KEYS[1], all[i])
  else
    out[#out + 1] = all[i]
    out[#out + 1] = demand
  end
end
return out
"""

# KEYS: the openings hash. ARGV: this pod's id, how long (ms) an opening is news, then the models
# whose breaker this pod opened. Returns {model, "at pod", ...} for every opening still news.
BREAKERS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local news = tonumber(ARGV[2])
for i = 3, #ARGV do
  redis.call('HSET', KEYS[1], ARGV[i], now .. ' ' .. ARGV[1])
end
redis.call('PEXPIRE', KEYS[1], 10 * news)
local all = redis.call('HGETALL', KEYS[1])
local out = {}
for i = 1, #all, 2 do
  local at = tonumber(string.match(all[i + 1], '^(%d+) '))
  if at == nil or now - at > news then
    redis.call('HDEL', KEYS[1], all[i])
  else
    out[#out + 1] = all[i]
    out[#out + 1] = all[i + 1]
  end
end
return out
"""

_SEQ_TTL_MS = 86_400_000
_STORE_ERRORS = (RedisError, OSError, TimeoutError)


@dataclass(slots=True)
class _Batch:
    seq: int
    amounts: dict[str, int]
    ttls: dict[str, int]


@dataclass(slots=True)
class _Seen:
    """What this pod last saw of one counter, and until when that matters."""

    value: int = 0
    expires: float = 0.0
    unsent: int = 0  # added here, not yet confirmed by Redis
    told_at: float = -1e18  # when Redis last said `value` (never: long ago)
    ttl_s: int = 0
    sending: int = 0  # the part of `unsent` in the batch on its way


def connect(
    url: str, timeout_s: float, max_connections: int = 32, password: str | None = None
) -> aioredis.Redis:
    """A pooled client that fails fast: no retries of its own (the counters fall back instead).

    The pool blocks for a free connection rather than failing at once (the plain pool raises
    MaxConnectionsError), so that a burst larger than the pool waits its turn within the charge's
    timeout instead of reading as an outage.
    """
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=timeout_s,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=0,
        password=password,
    )
    return aioredis.Redis.from_pool(pool)  # the client owns the pool: aclose() closes it


class RedisCounters:
    def __init__(
        self,
        client: aioredis.Redis,
        *,
        prefix: str = "turnout:",
        timeout_s: float = 0.05,
        replicas: int = 1,
        flush_interval_s: float = 0.02,
        probe_interval_s: float = 0.5,
        exact_within: float = 1.0,
        fresh_s: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
        on_state: Callable[[bool], None] = lambda up: None,
    ) -> None:
        self._client = client
        # Within this share of a limit every charge waits for the atomic check in Redis; below it,
        # by a view of Redis younger than fresh_s, a charge is an add that waits for nothing
        # (1.0: every charge with a limit waits). Decision 062 has what it does to the bound.
        self._exact_within = exact_within
        self._fresh_s = fresh_s
        self._prefix = prefix
        self._timeout_s = timeout_s
        self._replicas = replicas
        self._flush_interval_s = flush_interval_s
        self._probe_interval_s = probe_interval_s
        self._clock = clock
        self._on_state = on_state
        self._charge = client.register_script(CHARGE)
        self._flush = client.register_script(FLUSH)
        self._exchange = client.register_script(EXCHANGE)
        self._breakers = client.register_script(BREAKERS)
        self._queue: list[tuple[list[str], list[int], asyncio.Future[list[int]]]] = []
        self._pump: asyncio.Task[None] | None = None
        self._seq_key = f"{prefix}seq:{uuid.uuid4().hex}"
        self._seq = 0
        self._seen: dict[str, _Seen] = {}
        self._batch: _Batch | None = None  # sent (perhaps applied), not confirmed: resent as it is
        self._sending = False  # the batch is on its way (in a charge's pipeline or the flusher's)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._next_sweep = 0.0
        self._closing = False
        self.up = True
        self.reconciled = 0  # counters sent after an outage (for tests and metrics)
        self.unawaited = 0  # charges that were adds: far from every limit (for tests)

    # --- the Counters protocol ------------------------------------------------------------------

    async def charge(self, claims: Sequence[Claim], amount: int) -> Verdict:
        self._ensure_flusher()
        if self.up and amount and self._clear(claims, amount):
            totals = tuple(self.known(c) for c in claims)
            for c in claims:
                self.add(c.keys[0], amount, c.ttl_s)
            self.unawaited += 1
            return Verdict(totals, None, shared=True)
        if self.up:
            reply: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
            self._queue.append((self._keys(claims), self._charge_args(claims, amount), reply))
            if self._pump is None:
                self._pump = asyncio.get_running_loop().create_task(self._send_charges(), name="charges")
            try:
                # At most one round trip ahead of ours, then ours: each bounded by the timeout.
                async with asyncio.timeout(2 * self._timeout_s):
                    values = await asyncio.shield(reply)
            except _STORE_ERRORS as exc:
                self._went_down(exc)
            else:
                return self._charged(claims, values, amount)
        return self._charge_locally(claims, amount)

    def add(self, key: str, amount: int, ttl_s: int) -> None:
        if amount == 0:
            return
        seen = self._see(key, ttl_s)
        seen.unsent += amount
        self._ensure_flusher()
        self._wake.set()

    async def totals(self, claims: Sequence[Claim]) -> tuple[int, ...]:
        """Read without adding: a charge of nothing (which still restores lost counters)."""
        return (await self.charge(claims, 0)).totals

    def known(self, claim: Claim) -> int:
        """What the last reply said of each counter, plus what was added here since."""
        return sum(self._floor(k) + self._unsent(k) for k in claim.keys)

    async def close(self) -> None:
        """Stop the flusher and make one last attempt to send what is unsent."""
        self._closing = True
        for task in (self._task, self._pump):
            if task is not None:
                task.cancel()
                # Bounded: a cancel that lands inside the client may come back as a connection error,
                # which the flusher would take for an outage; `_closing` ends its loop then.
                await asyncio.wait([task], timeout=4 * self._timeout_s + 1)
        self._task = None
        self._sending = False  # a batch a cancelled pipeline carried is sent again below
        if self.up or await self._ping():
            with contextlib.suppress(*_STORE_ERRORS):
                while await self._send():
                    pass
        await self._client.aclose()

    # --- heartbeats: shared rates (limits/rates.py) and health (limits/health.py) ----------------

    async def exchange(
        self, pod: str, demand: Mapping[str, int], stale_s: float
    ) -> dict[str, dict[str, int]] | None:
        """Store this pod's demand and read every live pod's; None while the store is away (the
        flusher's probe tells when it is back)."""
        args: list[str | int] = [pod, json.dumps(demand), int(stale_s * 1000)]
        reply = await self._beat(self._exchange, f"{self._prefix}rates:demand", args)
        if reply is None:
            return None
        return {_text(reply[i]): json.loads(reply[i + 1]) for i in range(0, len(reply), 2)}

    async def openings(self, pod: str, opened: Sequence[str], news_s: float) -> list[tuple[str, str]] | None:
        """Store the breakers this pod opened; every pod's openings still news, as (model,
        "<ms> <pod>"); None while the store is away."""
        key = f"{self._prefix}health:opened"
        args: list[str | int] = [pod, int(news_s * 1000), *opened]
        reply = await self._beat(self._breakers, key, args)
        if reply is None:
            return None
        return [(_text(reply[i]), _text(reply[i + 1])) for i in range(0, len(reply), 2)]

    async def _beat(self, script: AsyncScript, key: str, args: Sequence[str | int]) -> list[Any] | None:
        """One heartbeat's script; None (and the store marked down) if Redis does not answer."""
        if not self.up:
            return None
        try:
            async with asyncio.timeout(self._timeout_s):
                return list(await script([key], list(args)))
        except _STORE_ERRORS as exc:
            self._went_down(exc)
            self._ensure_flusher()  # its probe notices the store's return
            self._wake.set()
            return None

    # --- hot path -------------------------------------------------------------------------------

    def _keys(self, claims: Sequence[Claim]) -> list[str]:
        return [self._prefix + k for c in claims for k in c.keys]

    def _charge_args(self, claims: Sequence[Claim], amount: int) -> list[int]:
        args = [amount, len(claims)]
        for c in claims:
            args += [len(c.keys), -1 if c.limit is None else c.limit, c.ttl_s * 1000]
        return args + [self._floor(k) for c in claims for k in c.keys]

    def _clear(self, claims: Sequence[Claim], amount: int) -> bool:
        """Whether every claim is far enough from its limit, by a fresh view, to charge without
        waiting: its current counter told within fresh_s, its older ones (a rolling window's, which
        only expire) told at all, and its total with `amount` below 1 - exact_within of the limit."""
        fresh = self._clock() - self._fresh_s
        for c in claims:
            if c.limit is None:
                continue
            seen = [self._seen.get(k) for k in c.keys]
            if any(s is None or s.told_at < fresh for s in seen[:1]) or any(s is None for s in seen):
                return False
            if self.known(c) + amount > c.limit * (1 - self._exact_within):
                return False
        return True

    def _charged(self, claims: Sequence[Claim], reply: list[int], amount: int) -> Verdict:
        refused, values = int(reply[0]), [int(v) for v in reply[1:]]
        totals, i, now = [], 0, self._clock()
        for c in claims:
            total = 0
            for k in c.keys:
                seen = self._see(k, c.ttl_s)
                seen.value, seen.told_at = values[i], now
                total += values[i]
                i += 1
            totals.append(total if refused else total - amount)  # as before this charge
        return Verdict(tuple(totals), refused - 1 if refused else None, shared=True)

    def _charge_locally(self, claims: Sequence[Claim], amount: int) -> Verdict:
        """This pod's guess while Redis is away: every pod spends what this one does, so a claim
        has room while (last seen total) + replicas x (added here since) is under its limit."""
        totals = tuple(sum(self._floor(k) + self._replicas * self._unsent(k) for k in c.keys) for c in claims)
        refused = first_refused(claims, totals)
        if refused is None and amount:
            for c in claims:
                self.add(c.keys[0], amount, c.ttl_s)
        return Verdict(totals, refused, shared=False)

    async def _send_charges(self) -> None:
        """Send the queued charges in one pipeline, again while more came in, until none is left.

        What was added meanwhile (real costs, estimates given back) rides in front of them in the
        same pipeline: the charges see it, and it costs no round trip of its own.
        """
        try:
            while self._queue:
                queued, self._queue = self._queue, []
                batch = self._next_batch()
                calls = [self._flush_call(batch)] if batch else []
                calls += [(self._charge, keys, args) for keys, args, _ in queued]
                try:
                    async with asyncio.timeout(self._timeout_s):
                        replies = await self._evalsha(calls)
                except _STORE_ERRORS as exc:
                    self._sending = False
                    for *_, reply in queued:
                        if not reply.done():
                            reply.set_exception(exc)
                    continue
                if batch:
                    self._flushed(batch, replies.pop(0))
                for (*_, reply), value in zip(queued, replies, strict=True):
                    if reply.done():
                        continue
                    if isinstance(value, Exception):
                        reply.set_exception(value)
                    else:
                        reply.set_result(value)
        finally:
            self._pump = None

    async def _evalsha(self, calls: Sequence[tuple[AsyncScript, Sequence[str], Sequence[int]]]) -> list[Any]:
        """Run the scripts in one pipeline; load them if Redis does not know them (a restarted
        Redis has forgotten every script) and run them once more."""
        for loaded in (False, True):
            async with self._client.pipeline(transaction=False) as pipe:
                for script, keys, args in calls:
                    pipe.evalsha(script.sha, len(keys), *keys, *args)
                replies = await pipe.execute(raise_on_error=False)
            if loaded or not any(isinstance(r, NoScriptError) for r in replies):
                return list(replies)
            for script in (self._charge, self._flush):
                await self._client.script_load(script.script)
        raise AssertionError("unreachable")

    # --- background: batches, outage, reconciliation --------------------------------------------

    def _ensure_flusher(self) -> None:
        if self._task is None and not self._closing:
            self._task = asyncio.get_running_loop().create_task(self._flusher(), name="redis-counters")

    async def _flusher(self) -> None:
        while not self._closing:
            if self.up:
                await self._wake.wait()
                await asyncio.sleep(self._flush_interval_s)  # let a burst of adds share one batch
            else:
                await asyncio.sleep(self._probe_interval_s)
                if not await self._ping():
                    continue
            self._wake.clear()
            try:
                while await self._send():
                    pass
            except _STORE_ERRORS as exc:
                self._went_down(exc)
                continue
            if not self.up:
                self._came_back()

    async def _ping(self) -> bool:
        try:
            async with asyncio.timeout(self._timeout_s):
                await self._client.ping()
        except _STORE_ERRORS:
            return False
        return True

    def _has_unsent(self) -> bool:
        return self._batch is not None or any(s.unsent for s in self._seen.values())

    async def _send(self) -> bool:
        """Send one batch; False if there is nothing to send or a charge is sending it."""
        batch = self._next_batch()
        if batch is None:
            return False
        try:
            async with asyncio.timeout(self._timeout_s * 4):  # a batch may be larger than a charge
                (values,) = await self._evalsha([self._flush_call(batch)])
        except BaseException:
            self._sending = False
            raise
        if isinstance(values, Exception):  # the script failed in Redis: kept, sent again later
            self._sending = False
            raise values
        self._flushed(batch, values)
        return True

    def _next_batch(self) -> _Batch | None:
        """The unconfirmed batch again, else a new one of what is unsent; None while one is on its
        way (one batch at a time keeps the sequence numbers in order) or when nothing is unsent."""
        if self._sending:
            return None
        if self._batch is None:
            amounts = {k: s.unsent for k, s in self._seen.items() if s.unsent}
            if not amounts:
                return None
            self._seq += 1
            self._batch = _Batch(self._seq, amounts, {k: self._seen[k].ttl_s for k in amounts})
            for k in amounts:
                seen = self._seen[k]
                seen.sending, seen.unsent = seen.unsent, 0
        self._sending = True
        return self._batch

    def _flush_call(self, batch: _Batch) -> tuple[AsyncScript, list[str], list[int]]:
        keys = list(batch.amounts)
        args: list[int] = [batch.seq, _SEQ_TTL_MS]
        for k in keys:
            args += [batch.amounts[k], batch.ttls[k] * 1000, self._floor(k)]
        return self._flush, [self._seq_key, *(self._prefix + k for k in keys)], args

    def _flushed(self, batch: _Batch, values: list[int] | Exception) -> None:
        self._sending = False
        if isinstance(values, Exception):
            self._wake.set()  # the flusher sends it again (and notices an outage)
            return
        self._batch = None
        now = self._clock()
        for k, v in zip(batch.amounts, values, strict=True):
            seen = self._see(k, batch.ttls[k])
            seen.value, seen.sending, seen.told_at = int(v), 0, now
        if not self.up:
            self.reconciled += len(batch.amounts)
        if self._has_unsent():
            self._wake.set()
        self._sweep()

    def _went_down(self, exc: BaseException) -> None:
        if self.up:
            self.up = False
            log.warning(
                "limits: the shared store is unreachable (%s); serving on this pod's share "
                "(1/%d of what remains) until it answers again",
                type(exc).__name__,
                self._replicas,
            )
            self._on_state(False)

    def _came_back(self) -> None:
        self.up = True
        log.warning("limits: the shared store answers again; counts made meanwhile were sent")
        self._on_state(True)

    # --- what this pod has seen -----------------------------------------------------------------

    def _see(self, key: str, ttl_s: int) -> _Seen:
        seen = self._seen.get(key)
        if seen is None:
            seen = self._seen[key] = _Seen()
        seen.ttl_s = max(seen.ttl_s, ttl_s)
        seen.expires = self._clock() + ttl_s
        return seen

    def _floor(self, key: str) -> int:
        seen = self._seen.get(key)
        return 0 if seen is None else seen.value

    def _unsent(self, key: str) -> int:
        seen = self._seen.get(key)
        return 0 if seen is None else seen.unsent + seen.sending

    def _sweep(self) -> None:
        now = self._clock()
        if now < self._next_sweep:
            return
        self._next_sweep = now + 60
        self._seen = {k: s for k, s in self._seen.items() if s.expires > now or s.unsent or s.sending}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
