"""An immutable snapshot of the registered models and providers; a reload swaps the whole snapshot."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from sidecar.domain.model import ModelSpec, ProviderSpec


@dataclass(frozen=True, slots=True)
class Registry:
    models: tuple[ModelSpec, ...]  # in config order
    providers: Mapping[str, ProviderSpec]
    _by_name: Mapping[str, ModelSpec] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {m.name: m for m in self.models})

    def get(self, name: str) -> ModelSpec | None:
        return self._by_name.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def endpoint(self, model: ModelSpec) -> str:
        return self.providers[model.provider].base_url
