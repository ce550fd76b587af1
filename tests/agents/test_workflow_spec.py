"""Workflow definitions: what is refused when read, with the failing path, and the JSON Schema."""

from __future__ import annotations

import pytest

from agents.workflow_spec import RefineStep, dump_workflow, parse_workflow, workflow_json_schema
from agents.workflow_store import check_references
from core.errors import Conflict, InvalidRequest, Unprocessable

FULL = """
name: careful-math
description: two experts, a synthesis, then check and fix up to twice
routing: {strategy: knn, k: 2, p: 0.9, threshold: 0.2, fallback: smollm2, shared_expert: smollm2}
aggregator: {type: synthesis, expert: smollm2, fallback: majority-vote}
steps:
  - {type: verify, id: check, expert: smollm2}
  - {type: refine, id: fix, expert: math-lora, goto: check, max_rounds: 2}
"""
ENABLED = ["smollm2", "math-lora", "knowledge-lora"]


def test_full_definition_round_trips_through_yaml_and_json() -> None:
    spec = parse_workflow(FULL)
    assert spec.routing.k == 2 and spec.aggregator is not None and spec.aggregator.type == "synthesis"
    assert isinstance(spec.steps[1], RefineStep) and spec.steps[1].max_rounds == 2
    assert parse_workflow(dump_workflow(spec, "yaml")) == spec
    assert parse_workflow(dump_workflow(spec, "json")) == spec
    assert set(spec.expert_refs()) == {
        "routing.fallback", "routing.shared_expert", "aggregator.expert", "steps.0.expert", "steps.1.expert",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("text", "param", "words"),
    [
        ("name: a\nsteps:\n - {type: wizard, id: c, expert: x}\n", "steps.0.type", "unknown type 'wizard'"),
        (
            "name: a\nsteps:\n - {type: verify, id: c, expert: x}\n - {type: refine, id: f, expert: x, goto: c}\n",
            "steps.1.max_rounds",
            "needs max_rounds",
        ),
        (
            "name: a\nsteps:\n - {type: refine, id: f, expert: x, goto: later, max_rounds: 2}\n",
            "steps.0.goto",
            "not an earlier step",
        ),
        (
            "name: a\nsteps:\n - {type: verify, id: c, expert: x}\n - {type: refine, id: f, expert: x, goto: c,"
            " max_rounds: 50}\n",
            "steps.1.max_rounds",
            "less than or equal to 5",
        ),
        ("name: a\nsteps:\n - {type: verify, id: c}\n", "steps.0.expert", "Field required"),
        ("name: a\nrouting: {k: 0}\n", "routing.k", "greater than or equal to 1"),
        ("name: a\nrouting: {threshold: 0.3}\n", "routing", "threshold needs a fallback"),
        ("name: a\naggregator: {type: best-of}\n", "aggregator.judge", "Field required"),
        ("name: a\naggregator: {type: bogus}\n", "aggregator.type", "unknown type 'bogus'"),
        ("name: a\nself_consistency: {samples: 3, temperature: 0}\n", "self_consistency.temperature", "greater"),
        ("name: 'bad name!'\n", "name", "pattern"),
        ("name: a\nextra_field: 1\n", "extra_field", "Extra inputs"),
        ("name: [\n", "body", "not valid YAML"),
        ("- just\n- a list\n", "body", "must be a mapping"),
    ],
)
def test_bad_definitions_are_refused_naming_the_path(text: str, param: str, words: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_workflow(text)
    assert caught.value.param == param
    assert words in caught.value.message and caught.value.message.startswith(param)


@pytest.mark.parametrize(
    ("text", "param", "error"),
    [
        ("name: a\naggregator: {type: best-of, judge: gone}\n", "aggregator.judge", Unprocessable),
        ("name: a\nrouting: {experts: [smollm2, nobody]}\n", "routing.experts.1", Unprocessable),
        ("name: a\nrouting: {k: 4}\n", "routing.k", Unprocessable),
        ("name: a\nrouting: {strategy: psychic}\n", "routing.strategy", Unprocessable),
        ("name: knn\n", "name", Conflict),
        ("name: topp-0.5\n", "name", Conflict),
    ],
)
def test_references_are_checked_against_the_registry(text: str, param: str, error: type[Exception]) -> None:
    with pytest.raises(error) as caught:
        check_references(parse_workflow(text), ENABLED)
    assert caught.value.param == param  # type: ignore[attr-defined]


def test_valid_references_pass() -> None:
    check_references(parse_workflow(FULL), ENABLED)


def test_json_schema_describes_steps_and_aggregators() -> None:
    schema = workflow_json_schema()
    assert schema["title"] == "WorkflowSpec"
    defs = schema["$defs"]
    assert {"VerifyStep", "RefineStep", "SynthesisSpec", "BestOfSpec", "PerTaskSpec", "RoutingSpec"} <= set(defs)
    assert defs["RefineStep"]["properties"]["max_rounds"]["anyOf"][0]["maximum"] == 5
