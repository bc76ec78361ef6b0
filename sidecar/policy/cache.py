"""Decision cache: bounded in entries and in bytes, with a TTL, keyed on what the decision depends on.

The key holds the route, the hints, the labels, what the request needs (capabilities, format,
requested output), a length bucket (about 12% wide), and a hash of the content only where the
route reads content. An entry is valid while the live health version it was made under holds and
its TTL has not run out; a reload builds a new engine, and with it a new cache. Plans that
truncated the conversation are not cached: they are specific to one conversation.

Entries are also bounded in bytes, estimated at insert, because the key holds the client's hints
and labels verbatim: before the request fields were bounded, 40 Route calls with an 8 MB task type
kept 1.07 GB for the TTL. The least recently used entries go first.
"""

from __future__ import annotations

import dataclasses
import math
import operator
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable

from sidecar.domain.plan import Plan
from sidecar.domain.request import ChatRequest, RoutingHints

CONSERVATIVE_CHARS_PER_TOKEN = 0.75  # fewer than any tokenizer or estimate here yields, even on CJK
MAX_BYTES = 32 * 1024 * 1024
# An entry's size: a fixed part, a part per model looked at, and the client's text in the key
# (kept by the key, echoed by reasons and renderings); fitted to measured RSS (decision 004).
ENTRY_BYTES = 3_000
MODEL_BYTES = 1_300
TEXT_FACTOR = 2


class DecisionCache:
    def __init__(
        self,
        max_entries: int = 4096,
        ttl_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        max_bytes: int = MAX_BYTES,
    ):
        self._entries: OrderedDict[Hashable, tuple[float, int, Plan, int]] = OrderedDict()
        self._max = max_entries
        self._max_bytes = max_bytes
        self._ttl = ttl_s
        self._clock = clock
        self.bytes = 0  # the estimated size of every entry, kept under max_bytes
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable, version: int, request_chars: int, output_tokens: int) -> Plan | None:
        found = self._entries.get(key)
        if found is not None:
            expires, made_at_version, plan, size = found
            if (
                expires > self._clock()
                and made_at_version == version
                and _still_fits(plan, request_chars, output_tokens)
            ):
                self._entries.move_to_end(key)
                self.hits += 1
                return plan
            del self._entries[key]
            self.bytes -= size
        self.misses += 1
        return None

    def put(self, key: Hashable, version: int, plan: Plan) -> None:
        old = self._entries.pop(key, None)
        if old is not None:
            self.bytes -= old[3]
        size = entry_bytes(key, plan)
        self._entries[key] = (self._clock() + self._ttl, version, plan, size)
        self.bytes += size
        while self._entries and (len(self._entries) > self._max or self.bytes > self._max_bytes):
            self.bytes -= self._entries.popitem(last=False)[1][3]

    def __len__(self) -> int:
        return len(self._entries)


def entry_bytes(key: Hashable, plan: Plan) -> int:
    """An entry's estimated size: cheap (no rendering, no recursion into shared model specs)."""
    return ENTRY_BYTES + MODEL_BYTES * len(plan.looked_at) + TEXT_FACTOR * _text(key)


def _text(value: object) -> int:
    """Characters of text in a key: its strings, in tuples and frozensets (the hints' values too)."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, tuple | frozenset):
        return sum(_text(v) for v in value)
    return 0


# The routing hints in a key as a plain tuple of their values, taken in one C call: hashing and
# comparing a tuple runs no Python, where the dataclass's own __hash__ and __eq__ each built one,
# twice per cached decision (decision 040).
hint_values = operator.attrgetter(*(f.name for f in dataclasses.fields(RoutingHints)))


def request_chars(request: ChatRequest) -> int:
    chars = 0
    for m in request.messages:  # a loop: no generator frame per message on every decision
        chars += len(m.text)
    return chars


def cache_key(route: str, request: ChatRequest, chars: int, reads_content: bool) -> Hashable:
    content = hash(tuple(m.text for m in request.messages)) if reads_content else None
    labels = tuple(sorted(request.labels.items())) if request.labels else ()
    return (
        route,
        hint_values(request.hints),
        labels,
        request.implied_capabilities(),
        request.response_format.kind,
        request.params.max_output_tokens,
        int(math.log(chars + 1) * 8),  # ~12% wide length buckets
        content,
    )


def _still_fits(plan: Plan, chars: int, output_tokens: int) -> bool:
    """A cached plan made for a slightly shorter input must still fit this one, counted pessimistically.

    Cheap (no tokenizing) and conservative: long inputs near a candidate's window are never served
    from the cache, only decided afresh.
    """
    needed = int(chars / CONSERVATIVE_CHARS_PER_TOKEN) + output_tokens
    for c in plan.candidates:  # noqa: SIM110 - a loop: no generator frame per candidate
        if c.model.context_window < needed:
            return False
    return True
