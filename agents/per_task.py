"""Per-task aggregator choice (Symbolic-MoE): for each task, the aggregator that scored best on validation data.

`calibrate` runs every candidate aggregator over labelled validation rows (real expert answers
plus the gold answer), scores closed answers against gold, and keeps the winner per task;
`AggregatorChoiceRepository.store` puts the result in the registry; `PerTask` reads it at query time.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agents.aggregators import Aggregate, AggregationContext, Aggregator, CallExpert, ExpertAnswer
from agents.answers import matches_gold
from agents.llm_aggregators import named_aggregator
from agents.workflow_store import AggregatorChoice
from core.errors import InvalidRequest, MoEError
from experts.generation import GenerationRequest
from router.decision import RoutingDecision


@dataclass
class ValidationRow:
    task: str
    question: str
    gold: str
    answers: list[ExpertAnswer]


class PerTask:
    """Delegates to the aggregator calibrated for the query's task; `default` where none was calibrated."""

    name = "per-task"

    def __init__(self, choices: Mapping[str, AggregatorChoice], default: str, expert: str | None = None) -> None:
        self.choices = choices
        self.default = default
        self.expert = expert

    async def aggregate(self, answers: list[ExpertAnswer], ctx: AggregationContext) -> Aggregate:
        choice = self.choices.get(ctx.task or "")
        name = choice.aggregator if choice else self.default
        result = await named_aggregator(name, self.expert).aggregate(answers, ctx)
        result.detail = {
            **result.detail,
            "task": ctx.task,
            "delegate": name,
            "calibrated": choice is not None,
            **({"validation_score": choice.score} if choice else {}),
        }
        return result


async def _score(aggregator: Aggregator, rows: list[ValidationRow], ctx_for: _ContextFactory) -> float:
    correct = 0
    for row in rows:
        try:
            result = await aggregator.aggregate(row.answers, ctx_for(row))
        except MoEError:
            continue  # a failing aggregator scores zero on that row
        correct += matches_gold(result.text, row.gold, row.question)
    return correct / len(rows)


class _ContextFactory:
    def __init__(self, call: CallExpert | None) -> None:
        self.call = call

    def __call__(self, row: ValidationRow) -> AggregationContext:
        request = GenerationRequest(messages=[{"role": "user", "content": row.question}], max_tokens=256)
        decision = RoutingDecision(strategy="validation", experts=[])
        return AggregationContext(request, decision, call=self.call, task=row.task)


async def calibrate(
    rows: list[ValidationRow], candidates: Mapping[str, Aggregator], call: CallExpert | None = None
) -> dict[str, AggregatorChoice]:
    """The best candidate per task; ties go to the candidate listed first (list the cheapest first)."""
    by_task: dict[str, list[ValidationRow]] = defaultdict(list)
    for row in rows:
        by_task[row.task].append(row)
    ctx_for = _ContextFactory(call)
    choices: dict[str, AggregatorChoice] = {}
    for task, task_rows in sorted(by_task.items()):
        scores = {name: await _score(agg, task_rows, ctx_for) for name, agg in candidates.items()}
        best = max(scores, key=lambda name: scores[name])  # max keeps the first of equal scores
        choices[task] = AggregatorChoice(
            task=task, aggregator=best, score=scores[best], scores=scores, samples=len(task_rows)
        )
    return choices


def _answer(raw: dict[str, Any]) -> ExpertAnswer:
    return ExpertAnswer(str(raw["expert"]), float(raw.get("weight", 1.0)), str(raw["text"]))


def read_validation_rows(lines: list[str]) -> list[ValidationRow]:
    """JSONL rows `{"task", "question", "gold", "answers": [{"expert", "weight", "text"}]}`; errors name the line."""
    rows = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            answers = [_answer(a) for a in raw["answers"]]
            rows.append(ValidationRow(str(raw["task"]), str(raw["question"]), str(raw["gold"]), answers))
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidRequest(f"line {number}: not a validation row ({exc!r})", param=f"line {number}") from exc
        if not answers:
            raise InvalidRequest(f"line {number}: a validation row needs at least one answer", param=f"line {number}")
    if not rows:
        raise InvalidRequest("no validation rows", param="file")
    return rows
