"""Rules: the first rule whose conditions hold picks the model list; else the route's pool stays.

Metadata conditions come first and are the safe default for sensitive traffic. Content conditions
(regex, keywords, input length, code) look at the last user message in memory only, never log it,
and are allowed only on routes that turn `content_heuristics` on. Every pattern, the built-in code
check's included, runs on RE2 (sidecar/policy/regex.py): linear in the prompt, whatever it holds.
"""

from __future__ import annotations

from collections.abc import Mapping

from sidecar.domain.errors import FieldViolation, InvalidRequest
from sidecar.domain.request import ChatRequest, Role
from sidecar.policy.draft import Draft, Entry
from sidecar.policy.regex import compile_linear
from sidecar.policy.specs import Rule, RulesSpec

# Linear-time: on a backtracking engine `^\s*` is retried at every line, quadratic in the prompt's
# newlines (measured in docs/decisions/001-linear-time-regex.md).
_CODE = compile_linear(
    r"(?m)```|^\s*(def |class |import |from \S+ import |#include|public |function |SELECT )|;\s*$"
)


class _Compiled:
    __slots__ = ("entries", "keywords", "listed", "regex", "rule")

    def __init__(self, rule: Rule, entries: list[Entry]) -> None:
        self.rule = rule
        self.entries = entries
        self.listed = f"listed by rule {rule.name!r}"
        self.regex = [compile_linear(p) for p in rule.regex]
        self.keywords = [k.lower() for k in rule.keywords]


class RulesStrategy:
    name = "rules"

    def __init__(self, spec: RulesSpec, entries: Mapping[str, Entry], route: str) -> None:
        self._spec = spec
        self._route = route
        self._rules = [_Compiled(r, [entries[m] for m in r.models]) for r in spec.rules]
        self.reads_content = any(r.uses_content for r in spec.rules)
        self._task_types = frozenset().union(*(r.task_types for r in spec.rules))
        self._tiers = frozenset().union(*(r.tiers for r in spec.rules))

    def apply(self, draft: Draft) -> None:
        request = draft.request
        hints = request.hints
        if self._spec.strict:
            self._check_known(hints.task_type, hints.user_tier)
        text: str | None = None
        for c in self._rules:
            rule = c.rule
            if not _metadata_matches(rule, request):
                continue
            if rule.uses_content:
                if text is None:
                    text = _last_user_text(request)
                if not self._content_matches(c, text, draft):
                    continue
            draft.reasons.append(_describe(rule))
            draft.listed_by = c.listed
            draft.replace(list(c.entries))
            return
        if hints.task_type and hints.task_type not in self._task_types:
            draft.reasons.append(f"task type {hints.task_type!r} matches no rule of route {self._route!r}")
        if hints.user_tier and hints.user_tier not in self._tiers:
            draft.reasons.append(f"tier {hints.user_tier!r} matches no rule of route {self._route!r}")
        draft.reasons.append(f"no rule matched; the models of route {self._route!r}")

    def _content_matches(self, c: _Compiled, text: str, draft: Draft) -> bool:
        rule = c.rule
        if c.regex and not any(p.search(text) for p in c.regex):
            return False
        if c.keywords:
            lowered = text.lower()
            if not any(k in lowered for k in c.keywords):
                return False
        if rule.has_code is not None and bool(_CODE.search(text)) is not rule.has_code:
            return False
        if rule.min_input_tokens is not None or rule.max_input_tokens is not None:
            tokens = draft.input_tokens(draft.alive[0]) if draft.alive else 0
            if rule.min_input_tokens is not None and tokens < rule.min_input_tokens:
                return False
            if rule.max_input_tokens is not None and tokens > rule.max_input_tokens:
                return False
        return True

    def _check_known(self, task_type: str, tier: str) -> None:
        violations = []
        if task_type and task_type not in self._task_types:
            known = ", ".join(sorted(self._task_types)) or "none"
            violations.append(
                FieldViolation(
                    "hints.task_type", f"route {self._route!r} is strict and knows task types: {known}"
                )
            )
        if tier and tier not in self._tiers:
            known = ", ".join(sorted(self._tiers)) or "none"
            violations.append(
                FieldViolation("hints.user_tier", f"route {self._route!r} is strict and knows tiers: {known}")
            )
        if violations:
            raise InvalidRequest(violations)


def _metadata_matches(rule: Rule, request: ChatRequest) -> bool:
    hints = request.hints
    return (
        (not rule.task_types or hints.task_type in rule.task_types)
        and (not rule.tiers or hints.user_tier in rule.tiers)
        and (not rule.tags or bool(rule.tags & hints.tags))
        and all(request.labels.get(k) == v for k, v in rule.labels)
    )


def _last_user_text(request: ChatRequest) -> str:
    for message in reversed(request.messages):
        if message.role is Role.USER:
            return message.text
    return ""


def _describe(rule: Rule) -> str:
    conditions = []
    if rule.task_types:
        conditions.append(f"task_type in {sorted(rule.task_types)}")
    if rule.tiers:
        conditions.append(f"tier in {sorted(rule.tiers)}")
    if rule.tags:
        conditions.append(f"tags any of {sorted(rule.tags)}")
    conditions.extend(f"label {k}={v}" for k, v in rule.labels)
    if rule.uses_content:
        conditions.append("content heuristics")  # which ones is config; the content is never echoed
    return f"rule {rule.name!r} matched ({', '.join(conditions) or 'always'})"
