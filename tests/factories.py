"""Small builders for domain objects used across unit tests."""

from __future__ import annotations

from sidecar.domain.model import ModelSpec, Price, ProviderSpec
from sidecar.domain.observe import AttemptEnded, Quiet
from sidecar.domain.outcome import AttemptRecord, AttemptStart
from sidecar.domain.request import Capability, ChatRequest, Message, Role, RoutingHints, TextPart

ALL_CAPS = frozenset({Capability.TOOLS, Capability.VISION, Capability.JSON_MODE, Capability.STREAMING})


def model(
    name: str,
    *,
    provider: str = "p1",
    price_in: float = 1.0,
    price_out: float = 2.0,
    context: int = 8192,
    max_output: int = 4096,
    caps: frozenset[Capability] = ALL_CAPS,
    quality: float = 0.5,
) -> ModelSpec:
    return ModelSpec(
        name=name,
        provider=provider,
        upstream_model=name,
        price=Price(int(price_in * 1e9), int(price_out * 1e9), int(price_in * 1e9)),
        context_window=context,
        max_output_tokens=max_output,
        capabilities=caps,
        quality=quality,
    )


def provider(name: str = "p1", timeout_s: float = 30.0) -> ProviderSpec:
    return ProviderSpec(
        name=name, kind="openai", base_url="http://127.0.0.1:9/v1", request_timeout_s=timeout_s
    )


def chat(text: str = "hello", **hints: object) -> ChatRequest:
    return ChatRequest(
        messages=(Message(Role.USER, (TextPart(text),)),),
        hints=RoutingHints(**hints),  # type: ignore[arg-type]
        request_id="r1",
    )


class SeenAttempts(Quiet):
    """A call observer that keeps what it is told of attempts: their starts, and their records
    (and answers) in the order they ended."""

    def __init__(self) -> None:
        self.starts: list[AttemptStart] = []
        self.records: list[AttemptRecord] = []
        self.ended: list[AttemptEnded] = []

    def attempt_started(self, event: AttemptStart) -> None:
        self.starts.append(event)

    def attempt_ended(self, event: AttemptEnded) -> None:
        self.records.append(event.record)
        self.ended.append(event)
