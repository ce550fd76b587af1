"""Mixed-adapter batches vs the base model alone, in one process; prints ONE JSON line.

SmolLM2-135M, B prompts x T new tokens, greedy, rank-8 LoRA on all 7 projections, N distinct
adapters spread over the batch. Our engine's mixed batch is compared with the same engine serving
the base model alone (ratio), and PEFT's mixed batch (`generate(adapter_names=...)`) with plain
transformers `generate` on the base model (the anchor). Configurations are interleaved and repeated
(every other round backwards), and each ratio is the median over rounds of the ratio within a round,
because the machine is shared and its speed drifts.

    .venv/bin/python bench/lora_engine.py [--repeats 3] [--device cpu|cuda] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

import core.env  # noqa: E402,F401
from core.settings import get_settings  # noqa: E402
from experts.bundled import DEFAULT_BASE, base_model_path  # noqa: E402
from experts.moe import AdapterStore, EngineRequest, GenerationEngine  # noqa: E402
from experts.training import ALL_PROJECTIONS  # noqa: E402

QUESTIONS = [
    "What is the capital of France?", "Explain photosynthesis briefly.", "Write a haiku about rain.",
    "What is 12 times 7?", "Name three primary colours.", "Why is the sky blue?", "Give me a cooking tip.",
    "Who wrote Hamlet?", "What does a CPU do?", "Describe a cat in one sentence.", "How far is the Moon?",
    "Suggest a name for a dog.", "What is the boiling point of water?", "Translate 'thank you' to Spanish.",
    "What is a prime number?", "Tell me a short joke about computers.",
]  # fmt: skip


def make_adapters(base_path: Path, out: Path, n: int, rank: int) -> list[Path]:
    """One PEFT adapter saved by PEFT, then n-1 copies with fresh random tensors (same config)."""
    from peft import LoraConfig, get_peft_model
    from safetensors.torch import load_file, save_file
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base_path, dtype=torch.float32)
    config = LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=ALL_PROJECTIONS, init_lora_weights=False)
    get_peft_model(model, config).save_pretrained(out / "a0")
    tensors = load_file(out / "a0" / "adapter_model.safetensors")
    paths = [out / "a0"]
    for i in range(1, n):
        torch.manual_seed(i)
        shutil.copytree(out / "a0", out / f"a{i}")
        save_file(
            {k: torch.randn_like(v) * v.std() for k, v in tensors.items()}, out / f"a{i}" / "adapter_model.safetensors"
        )
        paths.append(out / f"a{i}")
    return paths


def timed(fn: Callable[[], int]) -> float:
    """Tokens per second of one call of `fn` (which returns how many tokens it generated)."""
    started = time.perf_counter()
    tokens = fn()
    return tokens / (time.perf_counter() - started)


class Bench:
    def __init__(self, base_path: Path, adapters: list[Path], device: torch.device, batch: int, new_tokens: int):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(base_path)
        self.tokenizer.padding_side = "left"
        self.batch, self.new_tokens, self.adapters = batch, new_tokens, adapters
        self.prompts = [self._encode(QUESTIONS[i % len(QUESTIONS)]) for i in range(batch)]
        model = AutoModelForCausalLM.from_pretrained(base_path, dtype=torch.float32).to(device).eval()
        self.store = AdapterStore(model, max_loras=len(adapters), root=adapters[0].parent, base_names=())
        self.engine = GenerationEngine(model, self.tokenizer, self.store, max_batch=batch)
        self.engine.eos_ids = set()  # every row generates exactly new_tokens: equal work in every config
        self.peft = self._peft_model(base_path, device)

    def _encode(self, text: str) -> list[int]:
        messages = [{"role": "user", "content": text}]
        return list(
            self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)["input_ids"]
        )

    def _peft_model(self, base_path: Path, device: torch.device) -> Any:
        from peft import PeftModel
        from transformers import AutoModelForCausalLM

        base = AutoModelForCausalLM.from_pretrained(base_path, dtype=torch.float32).to(device).eval()
        model = PeftModel.from_pretrained(base, self.adapters[0], adapter_name="a0")
        for i, path in enumerate(self.adapters[1:], start=1):
            model.load_adapter(path, adapter_name=f"a{i}")
        return model.eval()

    def spread(self, n: int) -> list[int]:
        return [i % n for i in range(self.batch)]

    def ours(self, n: int | None) -> int:
        names = [None] * self.batch if n is None else [str(self.adapters[i]) for i in self.spread(n)]
        rows = self.engine.generate(
            [EngineRequest(p, adapter=a, max_tokens=self.new_tokens) for p, a in zip(self.prompts, names, strict=True)]
        )
        return sum(len(r.token_ids) for r in rows)

    @torch.inference_mode()
    def hf(self, n: int | None) -> int:
        width = max(len(p) for p in self.prompts)
        pad = self.tokenizer.pad_token_id
        ids = torch.tensor([[pad] * (width - len(p)) + p for p in self.prompts], device=self.peft.device)
        mask = (
            torch.arange(width, device=ids.device)[None]
            >= torch.tensor([width - len(p) for p in self.prompts], device=ids.device)[:, None]
        ).long()
        kwargs: dict[str, Any] = {
            "max_new_tokens": self.new_tokens,
            "min_new_tokens": self.new_tokens,
            "do_sample": False,
            "pad_token_id": pad,
        }
        if n is None:
            with self.peft.disable_adapter():
                out = self.peft.generate(input_ids=ids, attention_mask=mask, **kwargs)
        else:
            out = self.peft.generate(
                input_ids=ids, attention_mask=mask, adapter_names=[f"a{i}" for i in self.spread(n)], **kwargs
            )
        return int(out[:, width:].numel())


def adapter_costs(bench: Bench) -> dict[str, float]:
    store = bench.store
    times = []
    for path in bench.adapters[:4]:
        store.unload(str(path))
        started = time.perf_counter()
        store.load(str(path))
        times.append(time.perf_counter() - started)
    slot_bytes = sum(layer.rank * (layer.in_features + layer.out_features) * 4 for layer in store.layers.values())
    return {"adapter_load_s": round(statistics.median(times), 4), "resident_bytes_per_adapter": slot_bytes}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--adapters", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-peft", action="store_true", help="skip PEFT's anchor (it is the slow part)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    base_path = base_model_path(DEFAULT_BASE, get_settings().model_dir)
    with tempfile.TemporaryDirectory() as tmp:
        adapters = make_adapters(base_path, Path(tmp), max(args.adapters), args.rank)
        bench = Bench(base_path, adapters, device, args.batch, args.new_tokens)
        configs: dict[str, Callable[[], int]] = {"ours_base": lambda: bench.ours(None)}
        for n in args.adapters:
            configs[f"ours_n{n}"] = lambda n=n: bench.ours(n)
            if not args.no_peft:
                configs[f"peft_n{n}"] = lambda n=n: bench.hf(n)
        if not args.no_peft:
            configs["hf_base"] = lambda: bench.hf(None)
        for fn in configs.values():  # warm-up: allocator, kernels, gathered slots
            fn()
        samples: dict[str, list[float]] = {k: [] for k in configs}
        for rep in range(args.repeats):
            # Every other round runs backwards, so slow drift in the machine's speed favours no config.
            for key in list(configs)[:: 1 if rep % 2 == 0 else -1]:
                samples[key].append(timed(configs[key]))
                print(f"[{rep + 1}/{args.repeats}] {key}: {samples[key][-1]:.1f} tokens/s", file=sys.stderr, flush=True)
        tps = {k: statistics.median(v) for k, v in samples.items()}

        def ratio(key: str, baseline: str) -> float:
            """Median over rounds of the ratio within a round: configs of one round share the machine's state."""
            return round(statistics.median(a / b for a, b in zip(samples[key], samples[baseline], strict=True)), 3)

        result: dict[str, Any] = {
            "bench": "lora_engine", "device": str(device), "threads": args.threads, "batch": args.batch,
            "new_tokens": args.new_tokens, "rank": args.rank, "repeats": args.repeats,
            "tokens_per_s": {k: round(v, 2) for k, v in tps.items()},
        }  # fmt: skip
        for n in args.adapters:
            result[f"ratio_n{n}"] = ratio(f"ours_n{n}", "ours_base")
            if not args.no_peft:
                result[f"peft_ratio_n{n}"] = ratio(f"peft_n{n}", "hf_base")
        result.update(adapter_costs(bench))
        result["target_met"] = result[f"ratio_n{max(args.adapters)}"] >= 0.90
    print(json.dumps(result))


if __name__ == "__main__":
    main()
