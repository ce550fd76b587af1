"""Incremental detokenising for one row: stop strings, and text deltas safe to stream."""

from __future__ import annotations

from typing import Any


def _held_back(text: str, stops: tuple[str, ...]) -> int:
    """How many trailing characters might still grow into a stop string (or finish a UTF-8 char)."""
    hold = 0
    for stop in stops:
        for n in range(min(len(stop) - 1, len(text)), hold, -1):
            if text.endswith(stop[:n]):
                hold = n
                break
    if text.endswith("\ufffd"):  # a multi-byte character split across tokens
        hold = max(hold, len(text) - len(text.rstrip("\ufffd")))
    return hold


class TextTracker:
    """Decodes a row's generated ids; finds stop strings; hands out only text that will not change."""

    def __init__(self, tokenizer: Any, stops: tuple[str, ...]) -> None:
        self.tokenizer = tokenizer
        self.stops = tuple(s for s in stops if s)
        self.text = ""
        self.emitted = 0
        self.stopped = False

    def update(self, ids: list[int]) -> None:
        text = self.tokenizer.decode(ids, skip_special_tokens=True)
        cut = min((i for s in self.stops if (i := text.find(s)) >= 0), default=-1)
        if cut >= 0:
            text, self.stopped = text[:cut], True
        self.text = text

    def delta(self, final: bool) -> str:
        end = len(self.text) if final or self.stopped else len(self.text) - _held_back(self.text, self.stops)
        if end <= self.emitted:
            return ""
        piece, self.emitted = self.text[self.emitted : end], end
        return piece
