"""Read an evaluation dataset (CSV or JSON lines) into a Dataset; malformed rows become problems.

The format, one row per prompt:

    prompt (or question)   the text sent to the model
    score:<model>          that model's quality on the prompt (0/1, 0-1 or any numeric scale);
                           empty, `nan` or JSON null = not measured (NaN)
    cost:<model>           optional: USD the call cost; empty = unknown (NaN)
    split                  optional: train / test / ..., selected with `split=`
    sample_id or id        optional: a row id (else the line number)

Every other column is kept as text in `Dataset.columns` (e.g. `eval_name`, `label_type`).

A row that cannot be read (wrong number of fields, no prompt, a score or cost that is not a
number) is left out of the Dataset and listed in `Dataset.problems` with its line number, so the
caller decides whether to stop or to skip it and say so; nothing is dropped silently. Line numbers
are those of the file: a CSV record whose quoted prompt spans several lines is reported at the
line it starts on.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

PROMPT_COLUMNS = ("prompt", "question")
ID_COLUMNS = ("sample_id", "id")
SCORE_PREFIX = "score:"
COST_PREFIX = "cost:"
SPLIT_COLUMN = "split"
_T = TypeVar("_T")
_MISSING = frozenset({"", "nan", "na", "n/a", "null", "none"})

# Prompts with few-shot examples or code run to hundreds of kilobytes; the csv module's default
# field limit (128 KiB) would reject them as "field larger than field limit".
csv.field_size_limit(2**31 - 1)


class DatasetError(Exception):
    """The file as a whole cannot be used (absent, no prompt column, no score columns, ...)."""


@dataclass(frozen=True, slots=True)
class RowProblem:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass(frozen=True)
class Dataset:
    """The readable rows of one file, column-wise. Row i of every field describes the same prompt."""

    path: str
    prompts: tuple[str, ...]
    models: tuple[str, ...]
    scores: Mapping[str, tuple[float, ...]]  # model -> per row; NaN where not measured
    costs: Mapping[str, tuple[float, ...] | None]  # model -> per row (NaN = unknown); None: no cost column
    line_numbers: tuple[int, ...]
    ids: tuple[str, ...]
    columns: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # the other columns, as text
    problems: tuple[RowProblem, ...] = ()

    def __len__(self) -> int:
        return len(self.prompts)

    def take(self, keep: Sequence[bool]) -> Dataset:
        """The rows where `keep` is true (problems are kept: they describe the file)."""
        if len(keep) != len(self):
            raise ValueError(f"mask has {len(keep)} entries for {len(self)} rows")

        def pick(values: Sequence[_T]) -> tuple[_T, ...]:
            return tuple(v for v, k in zip(values, keep, strict=True) if k)

        return Dataset(
            path=self.path,
            prompts=pick(self.prompts),
            models=self.models,
            scores={m: pick(v) for m, v in self.scores.items()},
            costs={m: None if v is None else pick(v) for m, v in self.costs.items()},
            line_numbers=pick(self.line_numbers),
            ids=pick(self.ids),
            columns={c: pick(v) for c, v in self.columns.items()},
            problems=self.problems,
        )

    def dedupe_against(self, other: Dataset) -> Dataset:
        """Drop rows whose prompt (normalized) also appears in `other`: no test row seen in training."""
        seen = {normalize_prompt(p) for p in other.prompts}
        return self.take([normalize_prompt(p) not in seen for p in self.prompts])

    def splits(self) -> tuple[str, ...] | None:
        """The split of each row, or None when the file has no split column."""
        return self.columns.get(SPLIT_COLUMN)


_SPACE = re.compile(r"\s+")


def normalize_prompt(prompt: str) -> str:
    """The same question with different spacing or case counts as the same question."""
    return _SPACE.sub(" ", prompt).strip().casefold()


def load_dataset(path: str | Path, *, split: str | None = None) -> Dataset:
    """Read a .csv, .jsonl or .json (JSON lines) file; `split` keeps the rows of that split only.

    Raises DatasetError when the file cannot be used at all; row-level faults go to `problems`.
    """
    p = Path(path)
    if not p.is_file():
        raise DatasetError(f"{p}: no such file")
    suffix = p.suffix.lower()
    if suffix == ".csv":
        records = _csv_records(p)
    elif suffix in (".jsonl", ".json", ".ndjson"):
        records = _json_records(p)
    else:
        raise DatasetError(f"{p}: unknown format {suffix or '(no extension)'!r}: use .csv or .jsonl")
    return _build(str(p), records, split)


@dataclass(frozen=True, slots=True)
class _Record:
    line: int
    values: Mapping[str, object]  # column -> str (CSV) or any JSON value


def _csv_records(path: Path) -> Iterator[_Record | RowProblem | list[str]]:
    """First the header (a list), then one record or problem per non-blank row."""
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        try:
            header = next(reader)
        except StopIteration:
            raise DatasetError(f"{path}: empty file") from None
        except csv.Error as exc:
            raise DatasetError(f"{path}: line 1: {exc}") from None
        header = [h.strip() for h in header]
        duplicated = sorted({h for h in header if header.count(h) > 1})
        if duplicated:
            raise DatasetError(f"{path}: duplicate columns: {', '.join(duplicated)}")
        yield header
        end_of_previous = reader.line_num
        while True:
            start = end_of_previous + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:  # e.g. an unterminated quote: nothing after it can be trusted
                yield RowProblem(start, f"unreadable CSV ({exc}); stopped reading the file here")
                return
            end_of_previous = reader.line_num
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # blank line
            if len(row) != len(header):
                yield RowProblem(start, f"has {len(row)} fields, the header has {len(header)}")
                continue
            yield _Record(start, dict(zip(header, row, strict=True)))


def _json_records(path: Path) -> Iterator[_Record | RowProblem | list[str]]:
    """First the union of keys seen (a list), then one record or problem per non-blank line."""
    out: list[_Record | RowProblem] = []
    keys: dict[str, None] = {}
    with path.open(encoding="utf-8-sig") as f:
        for number, text in enumerate(f, start=1):
            if not text.strip():
                continue
            if number == 1 and text.lstrip().startswith("["):
                raise DatasetError(f"{path}: a JSON array; write one JSON object per line (JSON lines)")
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                out.append(RowProblem(number, f"not valid JSON ({exc.msg} at column {exc.colno})"))
                continue
            if not isinstance(value, dict):
                out.append(RowProblem(number, f"a JSON {type(value).__name__}, not an object"))
                continue
            keys.update(dict.fromkeys(str(k) for k in value))
            out.append(_Record(number, value))
    yield list(keys)
    yield from out


def _build(path: str, records: Iterator[_Record | RowProblem | list[str]], split: str | None) -> Dataset:
    header = next(records)
    assert isinstance(header, list)
    prompt_column = next((c for c in PROMPT_COLUMNS if c in header), None)
    if prompt_column is None:
        raise DatasetError(f"{path}: no prompt column (looked for {' or '.join(PROMPT_COLUMNS)})")
    models = tuple(c.removeprefix(SCORE_PREFIX) for c in header if c.startswith(SCORE_PREFIX))
    if not models:
        shown = ", ".join(header[:12]) + (", ..." if len(header) > 12 else "")
        raise DatasetError(f"{path}: no score:<model> columns (columns: {shown})")
    cost_models = [c.removeprefix(COST_PREFIX) for c in header if c.startswith(COST_PREFIX)]
    id_column = next((c for c in ID_COLUMNS if c in header), None)
    if split is not None and SPLIT_COLUMN not in header:
        raise DatasetError(f"{path}: --split {split} asked for, but the file has no split column")
    other_columns = [
        c for c in header if c != prompt_column and not c.startswith((SCORE_PREFIX, COST_PREFIX))
    ]

    prompts: list[str] = []
    lines: list[int] = []
    ids: list[str] = []
    scores: dict[str, list[float]] = {m: [] for m in models}
    costs: dict[str, list[float]] = {m: [] for m in cost_models}
    columns: dict[str, list[str]] = {c: [] for c in other_columns}
    problems: list[RowProblem] = []
    splits_seen: dict[str, None] = {}

    for record in records:
        if isinstance(record, RowProblem):
            problems.append(record)
            continue
        assert isinstance(record, _Record)
        values = record.values
        if split is not None:
            row_split = _text(values.get(SPLIT_COLUMN))
            splits_seen[row_split] = None
            if row_split != split:
                continue
        faults: list[str] = []
        prompt = values.get(prompt_column)
        if not isinstance(prompt, str) or not prompt.strip():
            faults.append(
                f"no {prompt_column} text" if prompt in (None, "") else f"{prompt_column} is not text"
            )
        row_scores = {m: _number(values.get(SCORE_PREFIX + m), SCORE_PREFIX + m, faults) for m in models}
        row_costs = {m: _number(values.get(COST_PREFIX + m), COST_PREFIX + m, faults) for m in cost_models}
        for m, c in row_costs.items():
            if c < 0:
                faults.append(f"{COST_PREFIX}{m} is {c}, a negative cost")
        if faults:
            problems.extend(RowProblem(record.line, fault) for fault in faults)
            continue
        assert isinstance(prompt, str)
        prompts.append(prompt)
        lines.append(record.line)
        ids.append(_text(values.get(id_column)) if id_column else str(record.line))
        for m, s in row_scores.items():
            scores[m].append(s)
        for m, c in row_costs.items():
            costs[m].append(c)
        for column in other_columns:
            columns[column].append(_text(values.get(column)))

    if split is not None and not prompts and not problems:
        found = ", ".join(sorted(splits_seen)) or "none"
        raise DatasetError(f"{path}: no rows in split {split!r} (splits found: {found})")
    return Dataset(
        path=path,
        prompts=tuple(prompts),
        models=models,
        scores={m: tuple(v) for m, v in scores.items()},
        # A cost column with no value at all is as good as absent: say so with None.
        costs={m: tuple(costs[m]) if m in costs and _any_known(costs[m]) else None for m in models},
        line_numbers=tuple(lines),
        ids=tuple(ids),
        columns={c: tuple(v) for c, v in columns.items()},
        problems=tuple(sorted(problems, key=lambda p: p.line)),
    )


def _number(value: object, column: str, faults: list[str]) -> float:
    """A finite float, or NaN for a missing value; anything else is a fault (and NaN is returned)."""
    if value is None:
        return math.nan
    if isinstance(value, bool):  # JSON true/false: a number in Python, but surely a mistake here
        faults.append(f"{column} is {json.dumps(value)}, not a number")
        return math.nan
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        if value.strip().lower() in _MISSING:
            return math.nan
        try:
            number = float(value)
        except ValueError:
            shown = value if len(value) <= 40 else value[:37] + "..."
            faults.append(f"{column} is {shown!r}, not a number")
            return math.nan
    else:
        faults.append(f"{column} is a JSON {type(value).__name__}, not a number")
        return math.nan
    if math.isinf(number):
        faults.append(f"{column} is {value!r}, not a finite number")
        return math.nan
    return number


def _text(value: object) -> str:
    return "" if value is None else value if isinstance(value, str) else json.dumps(value)


def _any_known(values: Sequence[float]) -> bool:
    return any(not math.isnan(v) for v in values)
