"""Regular expressions from the config, compiled for RE2: matching takes time linear in the text.

A rule's regex runs on a client's prompt, on the event loop. Python's `re` backtracks: `^(a+)+$` on
30 `a`s and a `!` takes ~35 s, and even an innocent-looking `^\\s*x` under re.M is quadratic (40,000
newlines: 23 s), while every other request, health check and scrape waits. RE2 never backtracks,
so no pattern can do that; the price is that it refuses backreferences and lookaround, which the
config check then reports with the field's path. Its \\w, \\d, \\s and \\b are ASCII; \\pL and
[[:alpha:]]-style classes take Unicode. See docs/decisions/001-linear-time-regex.md.
"""

from __future__ import annotations

from typing import Protocol

import re2

# A compiled pattern's memory, per pattern (RE2's own default). A pattern over it fails to compile.
MAX_MEM = 8 << 20


class Matcher(Protocol):
    def search(self, text: str) -> object | None: ...


class RegexError(ValueError):
    """The pattern is not one RE2 can run: a syntax error, or a backtracking-only feature."""


def _options() -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # a refused pattern is the caller's error to report, not RE2's to print
    options.max_mem = MAX_MEM
    return options


_OPTIONS = _options()


def compile_linear(pattern: str) -> Matcher:
    """`pattern` compiled for RE2 (Python syntax for what both take; flags inline, e.g. `(?i)`)."""
    try:
        compiled: Matcher = re2.compile(pattern, _OPTIONS)
    except re2.error as exc:
        reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else exc
        raise RegexError(
            f"regex {pattern[:200]!r} does not compile for RE2, the linear-time engine every configured "
            f"pattern runs on: {reason} (it takes no backreferences or lookaround)"
        ) from None
    return compiled
