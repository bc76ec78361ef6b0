"""Every code example in the READMEs that names its source file is that file, byte for byte.

A fenced block directly after a line `<!-- example: PATH -->` (PATH relative to the Markdown file)
must equal the file at PATH (trailing newlines aside). The files are the clients' tested examples,
so a README cannot drift from code that runs. `make check` runs this; exit 1 lists each mismatch.
"""

from __future__ import annotations

import difflib
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MARKER = re.compile(r"^<!-- example: (?P<path>\S+) -->\n```[\w+-]*\n(?P<body>.*?)^```$", re.M | re.S)
READMES = ["README.md", "clients/*/README.md"]


def problems(readme: Path) -> list[str]:
    found = []
    text = readme.read_text()
    for match in MARKER.finditer(text):
        source = (readme.parent / match["path"]).resolve()
        where = f"{readme.relative_to(ROOT)}: example {match['path']}"
        if not source.is_file():
            found.append(f"{where}: no such file")
            continue
        want, have = source.read_text().rstrip("\n"), match["body"].rstrip("\n")
        if want != have:
            diff = difflib.unified_diff(
                have.splitlines(), want.splitlines(), "README", str(source), lineterm="", n=1
            )
            found.append(f"{where}: differs from the file\n" + "\n".join(diff))
    if text.count("<!-- example: ") != len(MARKER.findall(text)):
        found.append(
            f"{readme.relative_to(ROOT)}: an example marker is not directly followed by a fenced block"
        )
    return found


def main() -> int:
    readmes = sorted({p for pattern in READMES for p in ROOT.glob(pattern)})
    found = [problem for readme in readmes for problem in problems(readme)]
    for problem in found:
        print(problem, file=sys.stderr)
    count = sum(len(MARKER.findall(r.read_text())) for r in readmes)
    if not found:
        print(f"{count} README examples match their files")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
