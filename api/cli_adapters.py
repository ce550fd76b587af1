"""`moe adapters ...`: make LoRA adapter experts here (PEFT's on-disk format)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from core.errors import MoEError
from core.settings import get_settings
from experts.bundled import DEFAULT_BASE, base_model_path
from experts.training import ALL_PROJECTIONS, LoraTrainingConfig, read_examples, train_lora

adapters_app = typer.Typer(help="Train and inspect LoRA adapters.", no_args_is_help=True)
console = Console()


@adapters_app.command("train")
def adapters_train(
    data: Annotated[Path, typer.Option(help='JSONL of {"prompt","completion"} or {"messages": [...]} lines.')],
    out: Annotated[Path, typer.Option(help="Folder to write the adapter to (PEFT's format).")],
    base: Annotated[str, typer.Option(help="Bundled base model id.")] = DEFAULT_BASE,
    rank: Annotated[int, typer.Option(min=1)] = 8,
    alpha: Annotated[int, typer.Option(min=1)] = 16,
    target: Annotated[list[str] | None, typer.Option(help="Projection to adapt; repeat. Default: all 7.")] = None,
    steps: Annotated[int, typer.Option(min=1)] = 40,
    batch_size: Annotated[int, typer.Option(min=1)] = 4,
    learning_rate: Annotated[float, typer.Option(min=0.0)] = 1e-3,
    max_length: Annotated[int, typer.Option(min=8)] = 256,
    seed: int = 0,
) -> None:
    """Fine-tune a LoRA adapter on DATA with PEFT and write it to OUT."""
    unknown = sorted(set(target or []) - set(ALL_PROJECTIONS))
    if unknown:
        console.print(f"[red]error[/red]: --target {', '.join(unknown)}: choose from {', '.join(ALL_PROJECTIONS)}")
        raise typer.Exit(code=2)
    config = LoraTrainingConfig(
        rank=rank, alpha=alpha, target_modules=tuple(target or ALL_PROJECTIONS), steps=steps,
        batch_size=batch_size, learning_rate=learning_rate, max_length=max_length, seed=seed,
    )  # fmt: skip
    try:
        examples = read_examples(data)
        base_path = base_model_path(base, get_settings().model_dir)
    except MoEError as exc:
        console.print(f"[red]error[/red]: {exc.message}")
        raise typer.Exit(code=2) from exc
    except OSError as exc:
        console.print(f"[red]error[/red]: cannot read {data}: {exc.strerror}")
        raise typer.Exit(code=2) from exc
    written = train_lora(base_path, examples, out.resolve(), config, progress=True)
    console.print(f"wrote adapter to {written} ({len(examples)} examples, {steps} steps, rank {rank})")
    console.print(
        f"register it: moe experts add NAME --kind lora --base-model {base} --adapter-path {written} "
        "(the folder must lie inside the model dir)"
    )
