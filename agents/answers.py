"""Closed answers read out of free text: a final number or a choice letter.

Majority vote and the per-task scorer compare these keys, never raw text. The number reader
follows the GSM8K convention (the last number in the answer wins, thousands separators dropped)
but reads a whole number token, so "$20.00" is 20 and "-3" is -3, where a bare digit-run
reader would see 0 and 3.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

_NUMBER = r"-?\$?\d[\d,]*(?:\.\d+)?"
_NUMBER_RE = re.compile(_NUMBER)
# An explicit marker beats "the last number": models often add a remark after their answer.
_MARKED_RE = [
    re.compile(r"####\s*(" + _NUMBER + ")"),
    re.compile(r"\\boxed\{\s*(" + _NUMBER + r")\s*\}"),
]
_CHOICE_LINE_RE = re.compile(r"^\s*\(?([A-J])[.)]\s+\S", re.MULTILINE)
_CHOICE_PATTERNS = [
    re.compile(r"(?i:answer)\s*(?:(?i:is)|:)?\s*:?\s*\(?\**([A-J])\b"),
    re.compile(r"^\s*\(?\**([A-J])\**\)?(?:[.):]|\s*$)", re.MULTILINE),
    re.compile(r"\(([A-J])\)"),
]


@dataclass(frozen=True)
class NumberMatch:
    value: Decimal
    start: int
    end: int

    @property
    def key(self) -> str:
        return canonical_number(self.value)


def canonical_number(value: Decimal) -> str:
    """One spelling per value: 20, 20.0 and 20.00 are all "20"; 0.50 is "0.5"."""
    if value == value.to_integral_value():
        return str(value.to_integral_value().copy_abs() if value.is_zero() else value.to_integral_value())
    return format(value.normalize(), "f")


def _parse(token: str) -> Decimal | None:
    try:
        return Decimal(token.replace(",", "").replace("$", ""))
    except InvalidOperation:
        return None


def find_final_number(text: str) -> NumberMatch | None:
    for pattern in _MARKED_RE:
        marked = list(pattern.finditer(text))
        if marked:
            m = marked[-1]
            value = _parse(m.group(1))
            if value is not None:
                return NumberMatch(value, m.start(1), m.end(1))
    for m in reversed(list(_NUMBER_RE.finditer(text))):
        value = _parse(m.group(0))
        if value is not None:
            return NumberMatch(value, m.start(), m.end())
    return None


def final_number(text: str) -> str | None:
    match = find_final_number(text)
    return match.key if match else None


def choice_letters(question: str) -> str:
    """The option letters a multiple-choice question offers ("ABCD"), or "" if it offers none."""
    letters = sorted(set(_CHOICE_LINE_RE.findall(question)))
    return "".join(letters) if len(letters) >= 2 else ""


def choice_letter(text: str, letters: str = "ABCD") -> str | None:
    for pattern in _CHOICE_PATTERNS:
        for m in pattern.finditer(text):
            letter = m.group(1).upper()
            if letter in letters:
                return letter
    return None


def closed_answer(text: str, question: str = "") -> str | None:
    """The vote key of an answer: its choice letter for multiple-choice questions, else its final number."""
    letters = choice_letters(question)
    if letters:
        return choice_letter(text, letters)
    return final_number(text)


def matches_gold(text: str, gold: str, question: str = "") -> bool:
    key = closed_answer(text, question)
    if key is None:
        return False
    gold_value = _parse(gold.strip())
    if gold_value is not None and not choice_letters(question):
        return key == canonical_number(gold_value)
    return key.upper() == gold.strip().upper()
