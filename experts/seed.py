"""The default registry: the bundled model plus two LoRA experts trained here on public data.

Adapters are trained once (a few dozen PEFT steps on CPU) and cached under the model dir.
GSM8K and MMLU come from `MOE_SEED_DATA_DIR`; without them the math adapter is trained on
generated arithmetic and the knowledge adapter is left out.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable
from pathlib import Path

from core.settings import Settings
from experts.bundled import DEFAULT_BASE, base_model_path
from experts.repository import ExpertRepository
from experts.schemas import ExpertKind, ExpertSpec
from experts.training import LoraTrainingConfig, TrainingExample, train_lora

log = logging.getLogger(__name__)

GENERAL_EXEMPLARS = [
    "Hi! How are you today?",
    "Tell me a joke.",
    "Write a short poem about autumn leaves.",
    "Draft a polite email declining a meeting invitation.",
    "Give me three tips for a productive morning.",
    "Summarise the plot of a fairy tale in two sentences.",
    "Pretend you are a pirate and greet me.",
]
MATH_EXEMPLARS = [
    "What is 2+2?",
    "What is 17 times 23?",
    "Compute 15% of 80.",
    "Solve for x: 3x + 5 = 20.",
    "How many minutes are in 3.5 hours?",
    "If a shirt costs $20 and is 25% off, what is the price?",
]
KNOWLEDGE_EXEMPLARS = [
    "Who wrote Pride and Prejudice?",
    "What is the function of mitochondria in a cell?",
    "Which treaty ended the First World War?",
    "What does the Fourth Amendment protect against?",
    "Which planet has the most moons?",
    "What is the difference between a virus and a bacterium?",
]


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().split("\n") if line.strip()]


def _gsm8k(data_dir: Path) -> tuple[list[TrainingExample], list[str]]:
    rows = _jsonl(data_dir / "gsm8k_test.jsonl")
    train = [TrainingExample(r["question"], r["answer"].replace("####", "The answer is")) for r in rows[:300]]
    return train, [r["question"] for r in rows[300:340]]


def _arithmetic() -> tuple[list[TrainingExample], list[str]]:
    rng = random.Random(0)
    examples = []
    for _ in range(200):
        a, b = rng.randint(2, 99), rng.randint(2, 99)
        op, value = rng.choice([("+", a + b), ("-", a - b), ("*", a * b)])
        examples.append(TrainingExample(f"What is {a} {op} {b}?", f"{a} {op} {b} = {value}. The answer is {value}."))
    return examples, []


def _mmlu(data_dir: Path) -> tuple[list[TrainingExample], list[str]]:
    def prompt(r: dict) -> str:
        options = "\n".join(f"({'ABCD'[i]}) {c}" for i, c in enumerate(r["choices"]))
        return f"{r['question']}\n{options}"

    train = [
        TrainingExample(prompt(r), f"The answer is ({r['answer']}) {r['choices'][r['answer_index']]}.")
        for r in _jsonl(data_dir / "mmlu_dev.jsonl")
    ]
    exemplars = [r["question"] for r in _jsonl(data_dir / "mmlu_val.jsonl")[::40] if r["category"] != "STEM"]
    return train, exemplars


def _mt_bench(data_dir: Path) -> list[str]:
    path = data_dir / "mt_bench_questions.jsonl"
    keep = {"writing", "roleplay", "extraction"}
    return [r["turns"][0] for r in _jsonl(path) if r["category"] in keep] if path.is_file() else []


def default_specs(settings: Settings, progress: bool = True) -> list[ExpertSpec]:
    data = settings.seed_data_dir
    has_data = (data / "gsm8k_test.jsonl").is_file() and (data / "mmlu_dev.jsonl").is_file()
    if not has_data:
        log.warning("no seed data in %s: the math adapter learns generated arithmetic instead", data)
    base = base_model_path(DEFAULT_BASE, settings.model_dir)
    config = LoraTrainingConfig(steps=settings.seed_adapter_steps, batch_size=2, max_length=160)

    def adapter(name: str, make: Callable[[], tuple[list[TrainingExample], list[str]]]) -> tuple[Path, list[str]]:
        out = settings.model_dir / "adapters" / name
        examples, exemplars = make()
        if not (out / "adapter_model.safetensors").is_file():
            train_lora(base, examples, out, config, progress=progress)
        return out, exemplars

    specs = [
        ExpertSpec(
            name="smollm2",
            kind=ExpertKind.local,
            base_model=DEFAULT_BASE,
            description="General assistant: conversation, writing, role-play.",
            skills=["chat", "writing", "roleplay"],
            exemplars=GENERAL_EXEMPLARS + _mt_bench(data),
        )
    ]
    math_dir, math_exemplars = adapter("math-lora", (lambda: _gsm8k(data)) if has_data else _arithmetic)
    specs.append(
        ExpertSpec(
            name="math-lora",
            kind=ExpertKind.lora,
            base_model=DEFAULT_BASE,
            adapter_path=str(math_dir),
            description="Arithmetic and grade-school math word problems, worked step by step.",
            skills=["arithmetic", "math word problems"],
            exemplars=MATH_EXEMPLARS + math_exemplars,
        )
    )
    if has_data:
        knowledge_dir, knowledge_exemplars = adapter("knowledge-lora", lambda: _mmlu(data))
        specs.append(
            ExpertSpec(
                name="knowledge-lora",
                kind=ExpertKind.lora,
                base_model=DEFAULT_BASE,
                adapter_path=str(knowledge_dir),
                description="Factual questions: history, law, biology, literature; multiple choice.",
                skills=["history", "law", "biology", "literature", "multiple choice"],
                exemplars=KNOWLEDGE_EXEMPLARS + knowledge_exemplars,
            )
        )
    return specs


def seed_if_empty(repo: ExpertRepository, settings: Settings, progress: bool = True) -> list[str]:
    """Fill an empty registry with the default experts; a registry with any expert is left alone."""
    if repo.list():
        return []
    added = []
    for spec in default_specs(settings, progress):
        repo.add(spec)
        added.append(spec.name)
    return added
