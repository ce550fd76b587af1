"""Declarative workflows: YAML or JSON validated by pydantic, exported as JSON Schema.

A workflow = routing (strategy and its parameters, or fixed experts) -> the experts answer
-> an aggregator -> optional steps (verify, refine). A refine step may loop back to an
earlier step, but only with `max_rounds`: an unbounded cycle is refused when the definition
is read, long before anything runs.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from core.errors import InvalidRequest
from experts.schemas import NAME_PATTERN

MAX_ROUNDS = 5


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RoutingSpec(_Strict):
    strategy: str | None = Field(default=None, description="Routing strategy; default: the router's default.")
    k: int = Field(default=1, ge=1, le=16, description="At most this many experts answer.")
    p: float | None = Field(default=None, gt=0, le=1, description="Top-p: the fewest experts whose scores reach p.")
    threshold: float | None = Field(
        default=None, ge=0, le=1, description="Below this routing confidence the fallback expert answers alone."
    )
    fallback: str | None = Field(default=None, description="Expert used when confidence is below threshold.")
    shared_expert: str | None = Field(default=None, description="An expert consulted on every query.")
    experts: list[str] = Field(default_factory=list, description="Fixed experts: when set, routing is skipped.")

    @model_validator(mode="after")
    def _threshold_needs_fallback(self) -> RoutingSpec:
        if self.threshold is not None and not self.fallback:
            raise ValueError("threshold needs a fallback expert")
        return self


class PassThroughSpec(_Strict):
    type: Literal["pass-through"]


class MajorityVoteSpec(_Strict):
    type: Literal["majority-vote"]


class SynthesisSpec(_Strict):
    type: Literal["synthesis"]
    expert: str | None = Field(default=None, description="Who writes the fused answer; default: the top expert.")
    fallback: Literal["majority-vote", "pass-through", "auto"] = "auto"
    max_tokens: int | None = Field(default=None, ge=1)


class BestOfSpec(_Strict):
    type: Literal["best-of"]
    judge: str = Field(description="The expert that picks the best answer.")
    fallback: Literal["majority-vote", "pass-through", "auto"] = "auto"


class PerTaskSpec(_Strict):
    type: Literal["per-task"]
    default: Literal["pass-through", "majority-vote"] = Field(
        default="majority-vote", description="Used for tasks with no calibrated choice."
    )
    expert: str | None = Field(default=None, description="Expert for a calibrated synthesis or best-of choice.")


AggregatorSpec = Annotated[
    PassThroughSpec | MajorityVoteSpec | SynthesisSpec | BestOfSpec | PerTaskSpec, Field(discriminator="type")
]


class SelfConsistencySpec(_Strict):
    samples: int = Field(ge=2, le=16, description="How many sampled answers vote.")
    temperature: float = Field(default=0.7, gt=0, le=2, description="Sampling needs temperature > 0.")
    expert: str | None = Field(default=None, description="Who is sampled; default: the top routed expert.")
    seed: int = Field(default=0, description="Sample i uses seed + i, so samples differ and runs repeat.")


class VerifyStep(_Strict):
    type: Literal["verify"]
    id: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_\-]{0,63}$")
    expert: str


class RefineStep(_Strict):
    type: Literal["refine"]
    id: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_\-]{0,63}$")
    expert: str
    goto: str | None = Field(default=None, description="An earlier step to go back to after refining (a loop).")
    max_rounds: int | None = Field(default=None, ge=1, le=MAX_ROUNDS, description="Bound on the loop; required.")


Step = Annotated[VerifyStep | RefineStep, Field(discriminator="type")]


class WorkflowSpec(_Strict):
    name: str = Field(pattern=NAME_PATTERN, description="Invoked as model 'moe:<name>'.")
    description: str = ""
    routing: RoutingSpec = Field(default_factory=RoutingSpec)
    aggregator: AggregatorSpec | None = Field(default=None, description="Default: what the router suggests.")
    self_consistency: SelfConsistencySpec | None = None
    steps: list[Step] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check_graph(self) -> WorkflowSpec:
        ids = [s.id for s in self.steps]
        if len(set(ids)) != len(ids):
            raise ValueError(f"step ids must be unique: {ids}")
        for i, step in enumerate(self.steps):
            if isinstance(step, RefineStep) and step.goto is not None:
                if step.goto not in ids[:i]:
                    raise ValueError(f"steps.{i}.goto: '{step.goto}' is not an earlier step (known: {ids[:i]})")
                if step.max_rounds is None:
                    raise ValueError(f"steps.{i}.max_rounds: a step that loops back needs max_rounds (1-{MAX_ROUNDS})")
        if self.self_consistency and self.aggregator and self.aggregator.type != "majority-vote":
            raise ValueError("aggregator: self_consistency votes with majority-vote; leave aggregator out")
        return self

    def expert_refs(self) -> dict[str, str]:
        """Every expert the definition names, keyed by the path where it is named."""
        refs: dict[str, str] = {}
        for field in ("fallback", "shared_expert"):
            if getattr(self.routing, field):
                refs[f"routing.{field}"] = getattr(self.routing, field)
        refs.update({f"routing.experts.{i}": name for i, name in enumerate(self.routing.experts)})
        for field in ("expert", "judge"):
            if self.aggregator is not None and getattr(self.aggregator, field, None):
                refs[f"aggregator.{field}"] = getattr(self.aggregator, field)
        if self.self_consistency and self.self_consistency.expert:
            refs["self_consistency.expert"] = self.self_consistency.expert
        refs.update({f"steps.{i}.expert": s.expert for i, s in enumerate(self.steps)})
        return refs


def _error_path(error: Any) -> str:
    # Discriminated unions put the tag in the location ("steps.0.verify.expert"); users wrote "steps.0.expert".
    tags = {"verify", "refine", "pass-through", "majority-vote", "synthesis", "best-of", "per-task"}
    return ".".join(str(p) for p in error["loc"] if p not in tags) or "workflow"


def validation_message(exc: ValidationError) -> tuple[str, str]:
    first = exc.errors()[0]
    path = _error_path(first)
    message = str(first["msg"]).removeprefix("Value error, ")
    named = re.match(r"^([\w.\-]+): ", message)
    if path == "workflow" and named:
        path, message = named.group(1), message[named.end() :]
    if first["type"] == "union_tag_invalid":
        path = f"{path}.type"
        message = f"unknown type '{first['input'].get('type')}' (known: {first['ctx']['expected_tags']})"
    return path, f"{path}: {message}"


def parse_workflow(data: Any) -> WorkflowSpec:
    """A dict, or YAML/JSON text, -> WorkflowSpec; raises InvalidRequest naming the failing path."""
    if isinstance(data, bytes | str):
        try:
            data = yaml.safe_load(data)
        except yaml.YAMLError as exc:
            raise InvalidRequest(f"body: the workflow is not valid YAML or JSON: {exc}", param="body") from exc
    if not isinstance(data, dict):
        raise InvalidRequest("body: a workflow must be a mapping (YAML or JSON object)", param="body")
    try:
        return WorkflowSpec.model_validate(data)
    except ValidationError as exc:
        path, message = validation_message(exc)
        raise InvalidRequest(message, param=path) from exc


def workflow_json_schema() -> dict[str, Any]:
    return WorkflowSpec.model_json_schema()


def dump_workflow(spec: WorkflowSpec, fmt: Literal["yaml", "json"] = "yaml") -> str:
    data = spec.model_dump(mode="json", exclude_defaults=True)
    return yaml.safe_dump(data, sort_keys=False) if fmt == "yaml" else json.dumps(data, indent=2)
