"""POST /v1/feedback: how good an expert's answer to a routed query was; the router learns from it."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.deps import RuntimeDep
from core.db import session_scope
from core.errors import NotFound
from router.outcome_store import OutcomeStore
from router.outcomes import Outcome

router = APIRouter(tags=["routing"])


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query_id: str = Field(min_length=1, max_length=64, description="The `routing.query_id` of the answer.")
    expert: str = Field(min_length=1, max_length=128, description="The expert whose answer is judged.")
    score: float | None = Field(default=None, ge=0.0, le=1.0, description="1 = best, 0 = worst.")
    correct: bool | None = Field(default=None, description="Shorthand for score 1 (true) or 0 (false).")
    query: str | None = Field(default=None, description="The query text, if the server no longer remembers it.")
    skills: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        default_factory=list,
        max_length=8,
        description="Skill or task tags, e.g. 'college_physics', or paths, coarse to fine: 'mmlu/college_physics'.",
    )

    @model_validator(mode="after")
    def _one_judgement(self) -> FeedbackRequest:
        if (self.score is None) == (self.correct is None):
            raise ValueError("give exactly one of score or correct")
        return self

    @property
    def value(self) -> float:
        return float(self.score) if self.score is not None else float(bool(self.correct))


def _record(runtime: Any, body: FeedbackRequest) -> dict[str, Any]:
    experts = runtime.enabled_experts()
    if body.expert not in experts:
        raise NotFound(f"no enabled expert named '{body.expert}'", param="expert")
    text = body.query or runtime.router.recall(body.query_id)
    if not text:
        raise NotFound(
            f"unknown query_id '{body.query_id}' (it expired or came from another server); send the query text too",
            param="query_id",
        )
    outcome = Outcome(text, body.expert, body.value, tuple(body.skills), body.query_id)
    with session_scope(runtime.sessions) as session:
        row_id = OutcomeStore(session).add(outcome)
    runtime.router.observe(outcome)  # only after the row is committed: memory never runs ahead of the DB
    return {"object": "feedback", "id": row_id, "query_id": body.query_id, "expert": body.expert, "score": body.value}


@router.post("/v1/feedback")
async def feedback(body: FeedbackRequest, runtime: RuntimeDep) -> dict[str, Any]:
    return await asyncio.to_thread(_record, runtime, body)
