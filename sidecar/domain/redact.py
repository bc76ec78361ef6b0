"""Key-like strings taken out of text before it leaves the process: client errors, spans and logs.

Two layers use it. The provider edge (providers/transport.py) redacts every provider error as it
is translated into a ProviderError; the last lines, where an error becomes a status (TurnoutError,
ProviderError), an attempt span gets its status and a log record is emitted, run it again, so that
a path that forgot is still covered. Providers echo what they were sent: OpenAI answers a wrong key
with "Incorrect API key provided: sk-proj-****...abcd", others quote more.

What goes:
- the credentials this process holds: every `Secret` remembers its value here when it is made (the
  configured keys and the auth token), and the transports add the secrets they sign with. The whole
  value anywhere, and a prefix of 6+ characters anywhere or of 4+ at the start of a word, each with
  the rest of its word (a masked echo keeps the key's head and tail). A prefix that is a plain
  word (a token "turnout-prod-..." starts with "turnout") counts only with a mask after it;
- well-known key shapes: sk-..., sk-ant-..., AIza..., AKIA / ASIA..., gsk_..., xai-..., hf_...,
  ABSK..., GitHub tokens, and whatever follows `Bearer`;
- a run of 16+ key characters with letters, digits and 12+ of them in a row, within three words
  after a word such as key, token, secret, password or signature ("api_key=3f9a...", "the
  session token is invalid: FwoGZXIv...").

The patterns are ours, not a client's, and have no nested repetition: linear time on Python's re.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = "********"
MIN_PREFIX = 4  # a configured secret's prefix this long is redacted at the start of a word ...
MIN_PREFIX_ANYWHERE = 6  # ... and this long anywhere

# Header names that carry credentials, matched as substrings of the case-folded name: refused in
# a provider's configured headers, and their values treated as secrets by the transports.
CREDENTIAL_WORDS = (
    "auth",
    "token",
    "key",
    "secret",
    "cookie",
    "password",
    "credential",
    "signature",
    "session",
)

_SHAPES = re.compile(
    r"(?<![A-Za-z0-9])(?:"
    r"sk-[A-Za-z0-9_\-*]{3,}"  # OpenAI (sk-, sk-proj-), Anthropic (sk-ant-), DeepSeek, ...
    r"|AIza[A-Za-z0-9_\-]{8,}"  # Google API keys
    r"|A(?:KIA|SIA|BIA|CCA)[A-Z0-9]{8,}"  # AWS access key ids
    r"|ABSK[A-Za-z0-9+/=]{8,}"  # Bedrock API keys
    r"|gsk_[A-Za-z0-9]{8,}"  # Groq
    r"|xai-[A-Za-z0-9]{8,}"  # xAI
    r"|hf_[A-Za-z0-9]{8,}"  # Hugging Face
    r"|gh[pousr]_[A-Za-z0-9]{16,}|github_pat_[A-Za-z0-9_]{16,}"
    r")"
)
_BEARER = re.compile(r"\b([Bb]earer|BEARER)\s+[A-Za-z0-9._~+/=\-]{4,}")
_AFTER_WORD = re.compile(
    r"(?i)(?:key|token|secret|password|passwd|credential|signature|session)s?"
    r"((?:[^A-Za-z0-9\n]{1,4}[A-Za-z]{1,12}){0,3}[^A-Za-z0-9\n]{1,4})"  # up to 3 words between
    r"([A-Za-z0-9+/_\-=.~]{16,})"
)
_LONG_RUN = re.compile(r"[A-Za-z0-9]{12,}")
_WORD_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-+/=*~")


def is_credential_header(name: str) -> bool:
    """Whether a header name (any case, stray spaces) looks like it carries a credential."""
    folded = name.strip().casefold()
    return any(word in folded for word in CREDENTIAL_WORDS)


class Redactor:
    """`redactor(text)`: the text with the known secrets and key-like strings replaced by MASK."""

    __slots__ = ("_heads", "secrets")

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Shorter values cannot be told from ordinary words; nothing this short is a real key.
        self.secrets = frozenset(s for s in secrets if len(s) >= MIN_PREFIX)
        self._heads = tuple((s[:MIN_PREFIX], s) for s in sorted(self.secrets, key=len, reverse=True))

    def with_secrets(self, secrets: Iterable[str]) -> Redactor:
        return Redactor(self.secrets | set(secrets))

    def __call__(self, text: str) -> str:
        if not text:
            return text
        for head, secret in self._heads:
            if head in text:
                text = _cut(text, head, secret)
        text = _SHAPES.sub(MASK, text)
        text = _BEARER.sub(lambda m: f"{m.group(1)} {MASK}", text)
        return _AFTER_WORD.sub(_after_word, text)


def _cut(text: str, head: str, secret: str) -> str:
    """Every occurrence of a prefix of `secret` (see the module's rules) and the rest of its word."""
    out: list[str] = []
    start = 0
    i = text.find(head)
    while i >= 0:
        n = MIN_PREFIX
        limit = min(len(secret), len(text) - i)
        while n < limit and text[i + n] == secret[n]:
            n += 1
        if n == len(secret) or _is_prefix_echo(text, i, i + n):
            end = i + n
            while end < len(text) and text[end] in _WORD_CHARS:
                end += 1
            out += (text[start:i], MASK)
            start = end
            i = text.find(head, end)
        else:
            i = text.find(head, i + 1)
    out.append(text[start:])
    return "".join(out)


def _is_prefix_echo(text: str, start: int, end: int) -> bool:
    """Whether text[start:end], a prefix of a secret, is that secret echoed in part.

    A prefix that is an ordinary word ("turnout" of a token "turnout-prod-...") counts only when a
    mask follows it ("turnout***"): a path or a sentence with the word is no echo. Any other prefix
    counts from 6 characters anywhere, or from 4 at the start of a word ("sk-P***", "AIza...").
    """
    matched = text[start:end]
    if matched.isalpha() and (matched.islower() or matched.isupper() or matched.istitle()):
        return text.startswith(("*", "…", "..."), end)
    at_word_start = start == 0 or not text[start - 1].isalnum()
    return end - start >= MIN_PREFIX_ANYWHERE or at_word_start


def _after_word(match: re.Match[str]) -> str:
    """A value after a key word is redacted when it looks random: letters and digits, and a run of
    12+ of them (model names such as gpt-4o-2024-08-06 have short parts)."""
    value = match.group(2)
    if any(c.isdigit() for c in value) and any(c.isalpha() for c in value) and _LONG_RUN.search(value):
        return match.group(0)[: match.start(2) - match.start(0)] + MASK
    return match.group(0)


_known = Redactor()


def remember(*secrets: str) -> None:
    """Add credentials this process holds to what `redact` takes out (Secret does it for its value)."""
    global _known
    new = {s for s in secrets if len(s) >= MIN_PREFIX} - _known.secrets
    if new:
        _known = _known.with_secrets(new)


def redact(text: str) -> str:
    """`text` without any credential this process holds or anything shaped like a key."""
    return _known(text)


def known() -> Redactor:
    """The redactor `redact` uses now (with every remembered secret)."""
    return _known
