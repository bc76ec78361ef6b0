"""Decision cache: bounded, with a TTL, keyed on what the decision depends on.

The key holds the route, the hints, the labels, what the request needs (capabilities, format,
requested output), a length bucket (about 12% wide), and a hash of the content only where the
route reads content. An entry is valid while the live health version it was made under holds and
its TTL has not run out; a reload builds a new engine, and with it a new cache. Plans that
truncated the conversation are not cached: they are specific to one conversation.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable

from sidecar.domain.plan import Plan
from sidecar.domain.request import ChatRequest

CONSERVATIVE_CHARS_PER_TOKEN = 0.75  # fewer than any tokenizer or estimate here yields, even on CJK


class DecisionCache:
    def __init__(
        self, max_entries: int = 4096, ttl_s: float = 10.0, clock: Callable[[], float] = time.monotonic
    ):
        self._entries: OrderedDict[Hashable, tuple[float, int, Plan]] = OrderedDict()
        self._max = max_entries
        self._ttl = ttl_s
        self._clock = clock
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable, version: int, request_chars: int, output_tokens: int) -> Plan | None:
        found = self._entries.get(key)
        if found is not None:
            expires, made_at_version, plan = found
            if (
                expires > self._clock()
                and made_at_version == version
                and _still_fits(plan, request_chars, output_tokens)
            ):
                self._entries.move_to_end(key)
                self.hits += 1
                return plan
            del self._entries[key]
        self.misses += 1
        return None

    def put(self, key: Hashable, version: int, plan: Plan) -> None:
        self._entries[key] = (self._clock() + self._ttl, version, plan)
        self._entries.move_to_end(key)
        if len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


def request_chars(request: ChatRequest) -> int:
    return sum(len(m.text) for m in request.messages)


def cache_key(route: str, request: ChatRequest, chars: int, reads_content: bool) -> Hashable:
    content = hash(tuple(m.text for m in request.messages)) if reads_content else None
    labels = tuple(sorted(request.labels.items())) if request.labels else ()
    return (
        route,
        request.hints,
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
    return all(c.model.context_window >= needed for c in plan.candidates)
