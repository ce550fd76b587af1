"""The real bundled model, the real demo adapters, and litellm against a real HTTP server."""

from __future__ import annotations

import pytest

from agents.runtime import Runtime
from core.db import session_scope
from core.errors import InvalidRequest, UpstreamError
from core.settings import Settings
from experts.generation import ExpertCall, GenerationRequest, GenerationResult
from experts.schemas import ExpertKind, ExpertOut, ExpertSpec
from tests.conftest import LiveServer

QUESTIONS = ["What is 3+5?", "Name a large animal.", "What colour is the sky?", "Say hello in French."]


@pytest.fixture(scope="module")
def runtime(settings: Settings) -> Runtime:
    return Runtime.build(settings)


def experts_by_name(runtime: Runtime) -> dict[str, ExpertOut]:
    return runtime.enabled_experts()


def ask(question: str, max_tokens: int = 16) -> GenerationRequest:
    return GenerationRequest([{"role": "user", "content": question}], max_tokens=max_tokens)


def test_mixed_adapter_batch_equals_each_row_alone(runtime: Runtime) -> None:
    experts = experts_by_name(runtime)
    names = ["smollm2", "math-lora", "knowledge-lora", "math-lora"]
    calls = [ExpertCall(experts[n], ask(q)) for n, q in zip(names, QUESTIONS, strict=True)]
    engine = runtime.pool.engine("smollm2-135m-instruct")
    mixed = engine.run(calls)
    alone = [engine.run([call])[0] for call in calls]
    assert all(isinstance(r, GenerationResult) for r in mixed)
    assert [r.text for r in mixed] == [r.text for r in alone]  # type: ignore[union-attr]


def test_adapter_changes_the_answer(runtime: Runtime) -> None:
    experts = experts_by_name(runtime)
    engine = runtime.pool.engine("smollm2-135m-instruct")
    question = ask("Tom has 3 apples and buys 4 more. How many apples does he have?", 40)
    base, math = engine.run([ExpertCall(experts["smollm2"], question), ExpertCall(experts["math-lora"], question)])
    assert isinstance(base, GenerationResult) and isinstance(math, GenerationResult)
    assert base.text != math.text


def test_max_tokens_and_stop_are_honoured(runtime: Runtime) -> None:
    expert = experts_by_name(runtime)["smollm2"]
    engine = runtime.pool.engine("smollm2-135m-instruct")
    (short,) = engine.run([ExpertCall(expert, ask("Write a long story about a dragon.", 5))])
    assert isinstance(short, GenerationResult)
    assert short.completion_tokens == 5 and short.finish_reason == "length"
    request = GenerationRequest([{"role": "user", "content": "Count from 1 to 10."}], max_tokens=40, stop=("5",))
    (stopped,) = engine.run([ExpertCall(expert, request)])
    assert isinstance(stopped, GenerationResult) and "5" not in stopped.text and stopped.finish_reason == "stop"


def test_an_overlong_prompt_fails_alone_in_its_batch(runtime: Runtime) -> None:
    expert = experts_by_name(runtime)["smollm2"]
    engine = runtime.pool.engine("smollm2-135m-instruct")
    huge = GenerationRequest([{"role": "user", "content": "word " * 9000}], max_tokens=8)
    bad, good = engine.run([ExpertCall(expert, huge), ExpertCall(expert, ask("Hi"))])
    assert isinstance(bad, InvalidRequest) and bad.param == "messages"
    assert isinstance(good, GenerationResult) and good.text


def test_sampling_is_reproducible_with_a_seed(runtime: Runtime) -> None:
    expert = experts_by_name(runtime)["smollm2"]
    engine = runtime.pool.engine("smollm2-135m-instruct")
    request = GenerationRequest([{"role": "user", "content": "Tell me a fun fact."}], 16, temperature=1.0, seed=7)
    first = engine.run([ExpertCall(expert, request), ExpertCall(expert, ask("Hi"))])[0]
    second = engine.run([ExpertCall(expert, request)])[0]
    assert isinstance(first, GenerationResult) and isinstance(second, GenerationResult)
    assert first.text == second.text


def test_litellm_expert_against_a_real_openai_compatible_server(runtime: Runtime, live_server: LiveServer) -> None:
    with session_scope(runtime.sessions) as session:
        remote = runtime.repository(session).add(
            ExpertSpec(
                name="remote-smollm2",
                kind=ExpertKind.litellm,
                litellm_model="openai/smollm2",
                api_base=f"{live_server.url}/v1",
                exemplars=["a remote test exemplar"],
            )
        )
    try:
        local = experts_by_name(runtime)["smollm2"]
        request = ask("What is the capital of Italy?", 12)
        (remote_answer,) = runtime.pool.runner(remote).run([ExpertCall(remote, request)])
        (local_answer,) = runtime.pool.runner(local).run([ExpertCall(local, request)])
        assert isinstance(remote_answer, GenerationResult), remote_answer
        assert isinstance(local_answer, GenerationResult)
        assert remote_answer.text == local_answer.text
        assert remote_answer.completion_tokens == local_answer.completion_tokens
    finally:
        with session_scope(runtime.sessions) as session:
            runtime.repository(session).remove("remote-smollm2")


def test_litellm_expert_failure_is_an_upstream_error(runtime: Runtime, live_server: LiveServer) -> None:
    now = experts_by_name(runtime)["smollm2"].created_at
    ghost = ExpertOut(
        id=999, name="ghost", kind="litellm", litellm_model="openai/not-registered", api_base=f"{live_server.url}/v1",
        created_at=now, updated_at=now,
    )  # fmt: skip
    runner = runtime.pool.runner(ghost)
    runner.retries = 0  # type: ignore[attr-defined]
    (outcome,) = runner.run([ExpertCall(ghost, ask("Hi"))])
    assert isinstance(outcome, UpstreamError)
    assert "ghost" in outcome.message
