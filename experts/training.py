"""Train a LoRA adapter with PEFT on prompt/completion pairs and write PEFT's on-disk format."""

from __future__ import annotations

import json
import random
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from core.compute import on_compute
from core.errors import InvalidRequest

ALL_PROJECTIONS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@dataclass(frozen=True)
class TrainingExample:
    prompt: str
    completion: str


@dataclass(frozen=True)
class LoraTrainingConfig:
    rank: int = 8
    alpha: int = 16
    target_modules: tuple[str, ...] = tuple(ALL_PROJECTIONS)
    steps: int = 40
    batch_size: int = 4
    learning_rate: float = 1e-3
    max_length: int = 256
    seed: int = 0


def read_examples(path: Path) -> list[TrainingExample]:
    """`{"prompt","completion"}` lines, or chat lines `{"messages": [...]}` (last assistant turn)."""
    examples = []
    for n, line in enumerate(path.read_text().split("\n"), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            examples.append(_example_from_row(row))
        except (json.JSONDecodeError, KeyError, TypeError, IndexError) as exc:
            raise InvalidRequest(f"{path}:{n}: not a prompt/completion or chat line ({exc})") from exc
    if not examples:
        raise InvalidRequest(f"{path} holds no training examples")
    return examples


def _example_from_row(row: dict[str, Any]) -> TrainingExample:
    if "messages" in row:
        messages = row["messages"]
        if messages[-1]["role"] != "assistant":
            raise KeyError("last message must be the assistant's")
        user = next(m["content"] for m in reversed(messages[:-1]) if m["role"] == "user")
        return TrainingExample(user, messages[-1]["content"])
    return TrainingExample(str(row["prompt"]), str(row["completion"]))


@on_compute
def train_lora(
    base_path: Path,
    examples: Iterable[TrainingExample],
    out_dir: Path,
    config: LoraTrainingConfig = LoraTrainingConfig(),
    progress: bool = True,
) -> Path:
    """Fine-tune a LoRA on the chat-formatted examples; only the completion tokens are learnt."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(config.seed)
    tokenizer = AutoTokenizer.from_pretrained(base_path)
    model = AutoModelForCausalLM.from_pretrained(base_path, dtype=torch.float32)
    lora = LoraConfig(
        r=config.rank,
        lora_alpha=config.alpha,
        target_modules=list(config.target_modules),
        lora_dropout=0.0,
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(model, lora)
    model.train()
    encoded = [_encode(tokenizer, ex, config.max_length) for ex in examples]
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.learning_rate)
    batches = _batches(encoded, config.batch_size, config.seed)
    for _ in tqdm(range(config.steps), desc=f"training {out_dir.name}", disable=not progress):
        input_ids, labels, mask = _collate(next(batches), tokenizer.pad_token_id)
        loss = model(input_ids=input_ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    tmp = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)
    return out_dir


def _encode(tokenizer: Any, example: TrainingExample, max_length: int) -> tuple[list[int], list[int]]:
    messages = [{"role": "user", "content": example.prompt}]
    prompt = list(tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)["input_ids"])
    answer = tokenizer(example.completion + "<|im_end|>", add_special_tokens=False)["input_ids"]
    ids = (prompt + answer)[:max_length]
    labels = ([-100] * len(prompt) + answer)[:max_length]
    return ids, labels


def _batches(rows: list[tuple[list[int], list[int]]], size: int, seed: int) -> Iterator[list[Any]]:
    rng = random.Random(seed)
    while True:
        order = rows[:]
        rng.shuffle(order)
        for start in range(0, len(order) - size + 1 if len(order) >= size else 1, size):
            yield order[start : start + size]


def _collate(batch: list[tuple[list[int], list[int]]], pad: int) -> tuple[torch.Tensor, ...]:
    width = max(len(ids) for ids, _ in batch)
    ids = torch.tensor([ids + [pad] * (width - len(ids)) for ids, _ in batch])
    labels = torch.tensor([lab + [-100] * (width - len(lab)) for _, lab in batch])
    mask = torch.tensor([[1] * len(i) + [0] * (width - len(i)) for i, _ in batch])
    return ids, labels, mask
