"""The planning workspace that strategies edit in turn, and the per-model facts they read.

A Draft lives for one decision. Strategies narrow, reorder or split its list of alive entries and
note why; the engine then freezes it into a Plan. Entries are built once per registry snapshot,
with everything a strategy needs precomputed and a direct reference to the model's live
statistics, because the decision path is measured in microseconds: per-entry work here is plain
attribute reads, and notes are `Why` objects rendered only when a response is built.
"""

from __future__ import annotations

from dataclasses import replace

from sidecar.domain.model import ModelSpec
from sidecar.domain.plan import Consensus, Note, Truncation
from sidecar.domain.request import ChatRequest, Message
from sidecar.policy.health import ModelStats
from sidecar.policy.tokens import TokenCounter, count_request, request_extras


class Entry:
    """A registered model with what the strategies read, precomputed."""

    __slots__ = (
        "caps",
        "counter",
        "in_price",
        "max_output",
        "model",
        "name",
        "out_price",
        "provider",
        "quality",
        "slot",
        "stats",
        "typical_latency_s",
        "window",
    )

    def __init__(self, model: ModelSpec, counter: TokenCounter, slot: int, stats: ModelStats) -> None:
        self.model = model
        self.name = model.name
        self.provider = model.provider
        self.counter = counter
        self.slot = slot  # index of this entry's tokenizer among the engine's tokenizers
        self.stats = stats  # live: updated by the health tracker as attempts complete
        self.in_price = model.price.input_per_mtok / 1e6  # usd_nanos per token
        self.out_price = model.price.output_per_mtok / 1e6
        self.quality = model.quality
        self.window = model.context_window
        self.max_output = model.max_output_tokens
        self.caps = model.capabilities
        self.typical_latency_s = model.typical_latency_s

    @property
    def latency_s(self) -> float:
        """What this model has been doing lately (p95, else EWMA), else its registry prior."""
        observed = self.stats.plan_latency_s
        return self.typical_latency_s if observed is None else observed


class Draft:
    __slots__ = (
        "_costs",
        "_extras",
        "_tokens",
        "alive",
        "classifier_score",
        "consensus",
        "dropped",
        "escalate_on",
        "listed_by",
        "notes",
        "order",
        "output_tokens",
        "reasons",
        "request",
        "scores",
        "shortfall",
        "stages",
        "truncation",
    )

    def __init__(self, request: ChatRequest, entries: list[Entry], output_tokens: int, counters: int) -> None:
        self.request = request
        self.alive = entries
        self.output_tokens = output_tokens  # for estimates: requested, or a default
        self.order: list[Entry] = entries  # every entry considered, in order
        self.reasons: list[Note] = []
        self.notes: dict[str, list[Note]] = {}
        self.dropped: set[str] = set()
        self.stages: list[list[Entry]] | None = None
        self.escalate_on: frozenset[str] = frozenset()
        self.consensus: Consensus | None = None  # set on the first stage by the consensus strategy
        self.truncation: Truncation | None = None
        self.classifier_score: float | None = None
        self.shortfall = ""  # why nothing fits, when it is the input's size
        self.scores: dict[str, tuple[float, float, float, float, float]] = {}
        self.listed_by = ""  # the note every model of a rule's list gets, set by the rules strategy
        self._tokens: list[int | None] = [None] * counters
        self._costs: dict[str, float] = {}
        self._extras: tuple[str, ...] | None = None

    def input_tokens(self, entry: Entry) -> int:
        """Input tokens as the entry's tokenizer counts them; counted once per tokenizer."""
        n = self._tokens[entry.slot]
        if n is None:
            request = self.request
            if self.truncation is not None:
                request = _with_messages(request, self.truncation.messages)
            if self._extras is None:
                self._extras = request_extras(request)
            n = self._tokens[entry.slot] = count_request(request, entry.counter, self._extras)
        return n

    def tokens(self) -> list[int | None]:
        """Input tokens by tokenizer slot, counted for every alive entry's tokenizer (bulk access)."""
        tokens = self._tokens
        for e in self.alive:
            if tokens[e.slot] is None:
                self.input_tokens(e)
        return tokens

    def cost(self, entry: Entry) -> float:
        """Estimated cost in usd_nanos: input tokens and the expected output at the entry's prices."""
        c = self._costs.get(entry.name)
        if c is None:
            c = self._costs[entry.name] = (
                self.input_tokens(entry) * entry.in_price + self.output_tokens * entry.out_price
            )
        return c

    def costs(self) -> list[float]:
        """`cost` of every alive entry, in order, in one pass."""
        tokens, out, memo = self.tokens(), self.output_tokens, self._costs
        result = []
        for e in self.alive:
            c = memo.get(e.name)
            if c is None:
                c = memo[e.name] = tokens[e.slot] * e.in_price + out * e.out_price  # type: ignore[operator]
            result.append(c)
        return result

    def reset_tokens(self) -> None:
        self._tokens = [None] * len(self._tokens)
        self._costs.clear()

    def note(self, entry: Entry, why: Note) -> None:
        notes = self.notes.get(entry.name)
        if notes is None:
            self.notes[entry.name] = [why]
        else:
            notes.append(why)

    def drop(self, entry: Entry, why: Note) -> None:
        self.note(entry, why)
        self.dropped.add(entry.name)

    def keep_only(self, kept: list[Entry]) -> None:
        self.alive = kept

    def replace(self, entries: list[Entry]) -> None:
        """A strategy picked a new list (e.g. a rule): it, and whatever was dropped before, is the record."""
        dropped = self.dropped
        self.order = entries + [e for e in self.order if e.name in dropped] if dropped else entries
        self.alive = entries


def _with_messages(request: ChatRequest, messages: tuple[Message, ...]) -> ChatRequest:
    return replace(request, messages=messages)
