"""The generation engine on the real bundled SmolLM2 with four random adapters of different ranks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from experts.moe import AdapterStore, EngineRequest, GenerationEngine, SamplingParams
from tests.experts.moe.conftest import ADAPTER_SPECS, load_base

PROMPTS = ["What is 3+5?", "Name a large animal.", "What colour is the sky?", "Say hello in French."]
NEW_TOKENS = 8


def encode(tokenizer: Any, text: str) -> list[int]:
    ids = tokenizer.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True, tokenize=True)
    return list(ids["input_ids"])


@pytest.fixture(scope="module")
def engine(base_path: Path, adapter_root: Path, tokenizer: Any) -> GenerationEngine:
    model = load_base(base_path)
    store = AdapterStore(model, max_loras=4, root=adapter_root, base_names=("smollm2-135m-instruct",))
    return GenerationEngine(model, tokenizer, store)


@pytest.fixture(scope="module")
def mixed_rows() -> list[tuple[str | None, str]]:
    """(adapter, prompt) per row: four adapters of ranks 4/8/16/6+2 and a base row, then two repeats."""
    adapters: list[str | None] = [*ADAPTER_SPECS, None]
    return [(adapters[i % len(adapters)], PROMPTS[i % len(PROMPTS)]) for i in range(7)]


def request(tokenizer: Any, adapter: str | None, prompt: str, **kw: Any) -> EngineRequest:
    return EngineRequest(encode(tokenizer, prompt), adapter=adapter, max_tokens=kw.pop("max_tokens", NEW_TOKENS), **kw)


@pytest.fixture(scope="module")
def mixed_tokens(engine: GenerationEngine, tokenizer: Any, mixed_rows: list) -> list[list[int]]:
    rows = engine.generate([request(tokenizer, a, p) for a, p in mixed_rows])
    assert engine.idle and all(r.finish_reason in ("stop", "length") for r in rows)
    return [r.token_ids for r in rows]


def peft_alone(base_path: Path, adapter_root: Path, tokenizer: Any, rows: list) -> list[list[int]]:
    """PEFT running each adapter alone, one prompt at a time, through transformers' generate."""
    from peft import PeftModel

    model = PeftModel.from_pretrained(load_base(base_path), adapter_root / "r4-attn", adapter_name="r4-attn")
    for name in list(ADAPTER_SPECS)[1:]:
        model.load_adapter(adapter_root / name, adapter_name=name)
    model.eval()
    out = []
    for adapter, prompt in rows:
        ids = torch.tensor([encode(tokenizer, prompt)])
        kwargs = {"max_new_tokens": NEW_TOKENS, "do_sample": False, "pad_token_id": tokenizer.pad_token_id}
        if adapter is None:
            with model.disable_adapter():
                gen = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), **kwargs)
        else:
            model.set_adapter(adapter)
            gen = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), **kwargs)
        tokens = gen[0, ids.shape[1] :].tolist()
        out.append(tokens[: tokens.index(tokenizer.eos_token_id) + 1] if tokenizer.eos_token_id in tokens else tokens)
    return out


def test_mixed_batch_equals_peft_running_each_adapter_alone(
    base_path: Path, adapter_root: Path, tokenizer: Any, mixed_rows: list, mixed_tokens: list[list[int]]
) -> None:
    expected = peft_alone(base_path, adapter_root, tokenizer, mixed_rows)
    assert mixed_tokens == expected
    # The adapters matter: the same prompt reads differently under different adapters.
    assert mixed_rows[1][1] == mixed_rows[5][1] and mixed_tokens[1] != mixed_tokens[5]


def test_a_row_does_not_depend_on_its_batch_mates(
    engine: GenerationEngine, tokenizer: Any, mixed_rows: list, mixed_tokens: list[list[int]]
) -> None:
    for i in (0, 3, 4):
        (alone,) = engine.generate([request(tokenizer, *mixed_rows[i])])
        assert alone.token_ids == mixed_tokens[i], mixed_rows[i]


def test_rows_join_and_leave_between_steps(
    engine: GenerationEngine, tokenizer: Any, mixed_rows: list, mixed_tokens: list[list[int]]
) -> None:
    early = [engine.submit(request(tokenizer, *mixed_rows[i], max_tokens=3 + i)) for i in range(3)]
    for _ in range(3):  # one prefill and two decodes: three tokens each
        engine.step()
    assert early[0].done and len(engine.running) == 2  # the short row left, the others run on
    late = [engine.submit(request(tokenizer, *mixed_rows[i])) for i in range(3, 6)]
    while not engine.idle:
        engine.step()
    for i, row in enumerate(early):
        assert row.token_ids == mixed_tokens[i][: 3 + i]
    assert [r.token_ids for r in late] == mixed_tokens[3:6]


def test_seeded_sampling_does_not_depend_on_batch_mates(engine: GenerationEngine, tokenizer: Any) -> None:
    def sampled(seed: int) -> EngineRequest:
        params = SamplingParams(temperature=1.0, top_p=0.9, seed=seed)
        return request(tokenizer, "r8-all", "Tell me a fun fact.", max_tokens=12, sampling=params)

    (alone,) = engine.generate([sampled(7)])
    together = engine.generate([request(tokenizer, None, "Hi"), sampled(7), sampled(8)])
    assert together[1].token_ids == alone.token_ids
    assert together[2].token_ids != alone.token_ids


def test_stop_strings_cut_the_text_and_streamed_deltas_add_up(engine: GenerationEngine, tokenizer: Any) -> None:
    (full,) = engine.generate([request(tokenizer, None, "Count from 1 to 10.", max_tokens=30)])
    assert "5" in full.text
    deltas: list[str] = []
    counting = request(tokenizer, None, "Count from 1 to 10.", max_tokens=30, stop=("5",), on_text=deltas.append)
    (stopped,) = engine.generate([counting])
    assert stopped.finish_reason == "stop" and stopped.text == full.text[: full.text.index("5")]
    assert "".join(deltas) == stopped.text and len(deltas) > 1
    (short,) = engine.generate([request(tokenizer, "r8-all", "Write a long story.", max_tokens=4)])
    assert short.finish_reason == "length" and len(short.token_ids) == 4
