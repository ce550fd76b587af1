"""JSON shapes of calls and outcomes, for task messages and stored results."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from core import errors
from core.errors import MoEError
from experts.backends.base import CallOutcome
from experts.generation import ExpertCall, GenerationRequest, GenerationResult
from experts.schemas import ExpertOut

# Routing text is all a runner never needs; leaving it out keeps each task message small.
_EXPERT_SKIP = {"exemplars", "description", "skills"}


def expert_to_json(expert: ExpertOut) -> dict[str, Any]:
    return expert.model_dump(mode="json", exclude=_EXPERT_SKIP)


def expert_from_json(data: dict[str, Any]) -> ExpertOut:
    return ExpertOut.model_validate(data)


def request_to_json(request: GenerationRequest) -> dict[str, Any]:
    return {**asdict(request), "stop": list(request.stop)}


def request_from_json(data: dict[str, Any]) -> GenerationRequest:
    return GenerationRequest(
        messages=[dict(m) for m in data["messages"]],
        max_tokens=int(data["max_tokens"]),
        temperature=float(data.get("temperature", 0.0)),
        top_p=float(data.get("top_p", 1.0)),
        seed=data.get("seed"),
        stop=tuple(data.get("stop") or ()),
    )


def call_to_json(call: ExpertCall) -> dict[str, Any]:
    return {"expert": expert_to_json(call.expert), "request": request_to_json(call.request)}


def call_from_json(data: dict[str, Any]) -> ExpertCall:
    return ExpertCall(expert_from_json(data["expert"]), request_from_json(data["request"]))


def error_to_json(error: MoEError) -> dict[str, Any]:
    return {
        "type": type(error).__name__,
        "message": error.message,
        "param": error.param,
        "code": error.code,
        "status_code": error.status_code,
        "error_type": error.error_type,
    }


def error_from_json(data: dict[str, Any]) -> MoEError:
    cls = getattr(errors, str(data.get("type")), MoEError)
    if not (isinstance(cls, type) and issubclass(cls, MoEError)):
        cls = MoEError
    return cls(str(data["message"]), param=data.get("param"), code=data.get("code"))


def outcome_to_json(outcome: CallOutcome) -> dict[str, Any]:
    if isinstance(outcome, MoEError):
        return {"error": error_to_json(outcome)}
    return {"result": asdict(outcome)}


def outcome_from_json(data: dict[str, Any]) -> CallOutcome:
    if "error" in data:
        return error_from_json(data["error"])
    return GenerationResult(**data["result"])
