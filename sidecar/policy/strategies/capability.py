"""Capabilities and context: drop models that lack what the request needs or cannot hold it.

A request needs tools when it defines tools, JSON mode for a JSON response format, vision when a
message holds an image, plus whatever hints.required_capabilities names. A model holds the request
when its context window fits the input (counted with the model's own tokenizer) plus the requested
output (or a reserve when none is requested).

When no model fits, the route decides: reject (the error says by how many tokens), or truncate the
conversation (drop the oldest turns, or trim the middle) to fit the largest window that has the
needed capabilities, and say so in the decision.
"""

from __future__ import annotations

from sidecar.domain.plan import Truncation, Why
from sidecar.policy.draft import Draft, Entry
from sidecar.policy.specs import CapabilitySpec
from sidecar.policy.tokens import count_messages
from sidecar.policy.truncate import truncate


class CapabilityStrategy:
    name = "capability"
    reads_content = False

    def __init__(self, spec: CapabilitySpec) -> None:
        self._spec = spec

    def apply(self, draft: Draft) -> None:
        request = draft.request
        needs = request.implied_capabilities()
        wanted_output = request.params.max_output_tokens
        output = wanted_output or self._spec.output_reserve_tokens
        capable: list[Entry] = []
        for e in draft.alive:
            if needs and not needs <= e.caps:
                draft.drop(e, "lacks " + ", ".join(sorted(c.value for c in needs - e.caps)))
            elif wanted_output and wanted_output > e.max_output:
                draft.drop(e, Why("max output {:,} < {:,} requested", e.max_output, wanted_output))
            else:
                capable.append(e)
        fits, too_big = self._fitting(draft, capable, output)
        if not fits and capable and self._spec.on_overflow != "reject":
            fits, too_big = self._truncated(draft, capable, output)
        for e, needed in too_big:
            draft.drop(e, Why("context {:,} < {:,} needed", e.window, needed))
        if too_big and not fits:
            over = min(needed - e.window for e, needed in too_big)
            draft.shortfall = f"the input exceeds the largest context window by {over:,} tokens"
        draft.keep_only(fits)

    def _fitting(
        self, draft: Draft, entries: list[Entry], output: int
    ) -> tuple[list[Entry], list[tuple[Entry, int]]]:
        fits, too_big = [], []
        draft.keep_only(entries)
        tokens = draft.tokens()
        for e in entries:
            needed = tokens[e.slot] + output  # type: ignore[operator]
            if needed > e.window:
                too_big.append((e, needed))
            else:
                fits.append(e)
        return fits, too_big

    def _truncated(
        self, draft: Draft, capable: list[Entry], output: int
    ) -> tuple[list[Entry], list[tuple[Entry, int]]]:
        largest = max(capable, key=lambda e: e.window)
        # Truncation counts messages only; tool definitions and the schema stay, so they come off too.
        request = draft.request
        extras = draft.input_tokens(largest) - count_messages(request.messages, largest.counter)
        budget = largest.window - output - extras
        strategy = self._spec.on_overflow
        assert strategy != "reject"
        cut = truncate(draft.request.messages, budget, largest.counter, strategy)
        if not cut.fits:
            return self._fitting(draft, capable, output)
        draft.truncation = Truncation(strategy, cut.dropped_messages, cut.removed_tokens, cut.messages)
        draft.reset_tokens()
        draft.reasons.append(
            f"input too long for every model: {strategy} removed {cut.dropped_messages} message(s), "
            f"about {cut.removed_tokens:,} tokens, to fit {largest.name} ({largest.window:,})"
        )
        return self._fitting(draft, capable, output)
