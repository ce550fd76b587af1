"""The router's output: which experts answer, with what weight, and why."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ExpertScore(BaseModel):
    name: str
    score: float = Field(description="Routing probability or weight in [0, 1].")


class RoutingDecision(BaseModel):
    strategy: str
    experts: list[ExpertScore] = Field(description="The chosen experts, best first; weights sum to 1.")
    candidates: list[ExpertScore] = Field(default_factory=list, description="Every expert scored.")
    skills: list[str] = Field(default_factory=list)
    confidence: float = 0.0
    aggregator: str = "pass-through"
    truncated: bool = Field(default=False, description="The query was cut to the routing length limit.")
    timings_ms: dict[str, float] = Field(
        default_factory=dict, description="encode: from arrival until its batch was encoded; score: the batch scored."
    )
    batch_size: int = Field(default=1, description="Queries encoded and scored together with this one.")
    query_id: str | None = Field(default=None, description="Quote it in POST /v1/feedback.")
    out_of_scope: bool = Field(default=False, description="In-scope score fell below the null-expert threshold.")
    in_scope_score: float | None = Field(default=None, description="What the null-expert threshold is compared to.")

    @property
    def expert_names(self) -> list[str]:
        return [e.name for e in self.experts]
