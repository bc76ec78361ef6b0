"""Routing hints in request headers, and the decision in response headers.

The SDKs send a fixed body, but every one of them lets an app add headers (`extra_headers`,
`default_headers`), so hints travel as `x-turnout-*` headers and the body stays what the SDK
built. `model` picks a route by name, pins a registry model, or (`auto`, absent) takes the
default route.

    x-turnout-tier               user tier            x-turnout-priority   batch|normal|interactive|critical
    x-turnout-task-type          task type            x-turnout-tenant     tenant id
    x-turnout-tags               a,b,c                x-turnout-labels     k=v,k2=v2
    x-turnout-latency-budget-ms  a positive number    x-turnout-max-cost-usd-nanos  a whole number
    x-request-id                 the request id (else one is made); echoed back

Answers carry x-request-id, x-turnout-route, x-turnout-model (the model that answered),
x-turnout-attempts, x-turnout-cost-usd-nanos (every attempt's cost) and, when a consensus vote
accepted the answer, x-turnout-agreement (its tally, e.g. `2 of 2 agreed on 'B'`, non-ASCII
escaped); a stream's headers go out before the answer, so it carries the route and request id only.
"""

from __future__ import annotations

from collections.abc import Collection, Container, Mapping
from dataclasses import replace

from sidecar.domain.errors import NotFound
from sidecar.domain.plan import Plan
from sidecar.domain.request import ChatRequest, Priority, new_request_id
from sidecar.domain.result import ExecutionResult
from sidecar.http_api.reading import MAX_NAME, MAX_NAMES, Reader

PREFIX = "x-turnout-"
REQUEST_ID = "x-request-id"
# Every header name spelled once: a name built per lookup is a new string to hash each time.
TAGS, LABELS, PRIORITY, TASK_TYPE, TIER, TENANT = (
    PREFIX + name for name in ("tags", "labels", "priority", "task-type", "tier", "tenant")
)
LATENCY_BUDGET, MAX_COST = PREFIX + "latency-budget-ms", PREFIX + "max-cost-usd-nanos"
ROUTE, MODEL, ATTEMPTS, COST, AGREEMENT = (
    PREFIX + name for name in ("route", "model", "attempts", "cost-usd-nanos", "agreement")
)
MAX_ID = 128
AUTO = "auto"
_PRIORITIES = {p.name.lower(): p for p in Priority}


def annotate(
    r: Reader,
    chat: ChatRequest,
    headers: Mapping[str, str],
    model: str,
    routes: Collection[str],
    models: Container[str],
) -> ChatRequest:
    """`chat` with the hints of its headers and its `model`; violations go to `r`.

    Raises NotFound (404) for a `model` that is neither a route nor a registry model, once the
    request is otherwise valid.
    """
    hints = chat.hints
    get = headers.get
    # Each header is parsed only when present: most calls carry none of them, and the calls into
    # the parsers were a fifth of reading such a request (decision 040).
    tags = _list(r, TAGS, text) if (text := get(TAGS)) else []
    labels = dict(chat.labels)
    if text := get(LABELS):
        for item in _list(r, LABELS, text):
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                r.bad(LABELS, f"each label is key=value (got {item[:64]!r})")
            labels[key.strip()] = value.strip()
    priority = hints.priority
    if word := get(PRIORITY, "").strip().lower():
        if word in _PRIORITIES:
            priority = _PRIORITIES[word]
        else:
            r.bad(PRIORITY, f"one of {', '.join(_PRIORITIES)} (got {word[:64]!r})")
    budget = hints.latency_budget_s
    if text := get(LATENCY_BUDGET):
        budget = _number(r, LATENCY_BUDGET, text, whole=False)
        budget = budget / 1000 if budget else None
    max_cost = hints.max_cost_usd_nanos
    if text := get(MAX_COST):
        max_cost = int(_number(r, MAX_COST, text, whole=True) or 0)
    route, pinned = hints.route, hints.pinned_model
    if model and model != AUTO:
        if model in routes:
            route = model
        elif model in models:
            pinned = model
    request_id = get(REQUEST_ID) or chat.request_id
    if len(request_id) > MAX_ID:
        r.bad(REQUEST_ID, f"at most {MAX_ID} characters")
    task_type, tier, tenant = hints.task_type, hints.user_tier, chat.tenant_id
    if (text := get(TASK_TYPE)) is not None:
        task_type = _name(r, TASK_TYPE, text)
    if (text := get(TIER)) is not None:
        tier = _name(r, TIER, text)
    if (text := get(TENANT)) is not None:
        tenant = _name(r, TENANT, text)
    r.check()
    if model and model != AUTO and not (route or pinned):
        raise NotFound(
            "MODEL_NOT_FOUND",
            "model",
            f"model {model[:MAX_NAME]!r} is neither a route ({', '.join(sorted(routes))}) nor a model "
            "of the registry (GET /v1/models lists both), nor 'auto'",
        )
    return replace(
        chat,
        hints=replace(
            hints,
            task_type=task_type,
            user_tier=tier,
            priority=priority,
            latency_budget_s=budget,
            max_cost_usd_nanos=max_cost,
            route=route,
            pinned_model=pinned,
            tags=hints.tags | frozenset(tags) if tags else hints.tags,
        ),
        request_id=request_id or new_request_id(),
        tenant_id=tenant,
        labels=labels,
    )


def answered(plan: Plan, result: ExecutionResult, request_id: str) -> dict[str, str]:
    headers = {
        REQUEST_ID: request_id,
        ROUTE: plan.route,
        MODEL: result.candidate.model.name,
        ATTEMPTS: str(len(result.attempts)),
        COST: str(result.total_cost_usd_nanos),
    }
    if result.agreement:
        headers[AGREEMENT] = _header_safe(result.agreement)
    return headers


def _header_safe(text: str) -> str:
    """The tally quotes the agreed answer: escape what a header cannot carry (non-ASCII, controls)."""
    return "".join(c if " " <= c <= "~" else c.encode("unicode_escape").decode() for c in text)


def streaming(plan: Plan, request_id: str) -> dict[str, str]:
    return {REQUEST_ID: request_id, ROUTE: plan.route}


def _name(r: Reader, field: str, value: str) -> str:
    value = value.strip()
    if len(value) > MAX_NAME:
        r.bad(field, f"at most {MAX_NAME} characters (got {len(value):,})")
        return ""
    return value


def _list(r: Reader, field: str, text: str) -> list[str]:
    items = [item.strip() for item in text.split(",") if item.strip()]
    if len(items) > MAX_NAMES:
        r.bad(field, f"at most {MAX_NAMES} entries (got {len(items):,})")
        return []
    return [_name(r, field, item) for item in items]


def _number(r: Reader, field: str, text: str, *, whole: bool) -> float | None:
    try:
        value = int(text) if whole else float(text)
    except ValueError:
        r.bad(field, f"must be a {'whole ' if whole else ''}number (got {text[:64]!r})")
        return None
    if not value >= 0 or value == float("inf") or (not whole and value == 0):
        r.bad(field, "must be positive" if not whole else "must not be negative")
        return None
    return float(value)
