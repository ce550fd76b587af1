"""Labelled routing data: JSONL rows `{"text": ..., "label": ...}` (extra fields allowed)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import InvalidRequest, NotFound


@dataclass(frozen=True)
class Example:
    text: str
    label: str
    fine: str  # a finer label (e.g. intent under domain); equals `label` when the file has none


def jsonl_rows(path: Path) -> Iterator[tuple[int, Any]]:
    """(line number, parsed value) per non-blank line; a missing file or a line that is not JSON is a clear
    error naming the file and the line."""
    if not path.is_file():
        raise NotFound(f"no such file: {path}", param=str(path))
    for number, line in enumerate(path.read_text(encoding="utf-8").split("\n"), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidRequest(f"{path}:{number}: not valid JSON ({exc.msg})", param=str(path)) from None
        yield number, row


def load_examples(
    path: Path, label_field: str = "label", text_field: str = "text", fine_field: str | None = None
) -> list[Example]:
    rows = []
    for number, row in jsonl_rows(path):
        if not isinstance(row, dict) or text_field not in row or label_field not in row:
            raise InvalidRequest(
                f"{path}:{number}: needs the fields '{text_field}' and '{label_field}'", param=str(path)
            )
        label = str(row[label_field])
        fine = str(row.get(fine_field, label)) if fine_field else label
        rows.append(Example(str(row[text_field]), label, fine))
    if not rows:
        raise InvalidRequest(f"{path} has no examples", param=str(path))
    return rows
