"""`moe router fit`, `moe eval routing`, `moe eval cost-quality`: thin faces over router.fitting/evaluation."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from api.cli_common import fail
from core.errors import InvalidRequest, MoEError
from core.settings import get_settings

router_app = typer.Typer(help="Fit the router's heads and thresholds.", no_args_is_help=True)
eval_app = typer.Typer(help="Evaluate routing quality and cost-quality trade-offs.", no_args_is_help=True)
console = Console(stderr=True)

ExemplarsOpt = Annotated[Path, typer.Option("--exemplars", help="JSONL {text, label} the router learns from.")]
LabelOpt = Annotated[str, typer.Option("--label-field", help="Field holding the label (the expert).")]
FineOpt = Annotated[str | None, typer.Option("--fine-label-field", help="Optional finer label, e.g. intent.")]
OosOpt = Annotated[str, typer.Option("--oos-label", help="Label meaning out-of-scope (null expert).")]


@lru_cache(maxsize=1)
def _encoder() -> Any:
    from router.encoder import Encoder

    return Encoder()  # one per process: fitting and evaluating in one command share it


FinetuneOpt = Annotated[
    bool, typer.Option("--finetune", help="Fine-tune the encoder on the exemplars first (minutes on a CPU).")
]
EpochsOpt = Annotated[float, typer.Option("--finetune-epochs", min=0.01, help="Passes over the exemplars.")]


def _fit(
    exemplars: Path,
    validation: Path | None,
    label: str,
    fine: str | None,
    oos: str,
    recall: float,
    finetune_epochs: float | None = None,
) -> Any:
    from router.data import load_examples
    from router.finetune import FinetuneConfig
    from router.fitting import fit_router

    train = load_examples(exemplars, label, fine_field=fine)
    held = load_examples(validation, label, fine_field=fine) if validation else None
    finetune = FinetuneConfig(epochs=finetune_epochs) if finetune_epochs is not None else None
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task("encoding exemplars", total=None)
        fitted = fit_router(
            _encoder(), train, held, oos_label=oos, target_oos_recall=recall, finetune=finetune,
            encoder_cache=get_settings().data_dir / "router" / "encoders",
            progress=lambda what: bar.update(task, description=what),
        )  # fmt: skip
    return fitted


@router_app.command("fit")
def fit(
    exemplars: ExemplarsOpt,
    validation: Annotated[Path | None, typer.Option(help="JSONL to tune the null-expert threshold on.")] = None,
    label_field: LabelOpt = "label",
    fine_label_field: FineOpt = None,
    oos_label: OosOpt = "oos",
    target_oos_recall: Annotated[float, typer.Option(min=0.0, max=1.0)] = 0.9,
    finetune: FinetuneOpt = False,
    finetune_epochs: EpochsOpt = 1.0,
) -> None:
    """Fit the head on EXEMPLARS and the null-expert threshold on VALIDATION; the server loads them at start.

    With --finetune the encoder is fine-tuned on the exemplars' (fine) labels first, and the server then
    routes in its space: the kNN index is rebuilt, and the in-scope score combines three views."""
    try:
        fitted = _fit(exemplars, validation, label_field, fine_label_field, oos_label, target_oos_recall,
                      finetune_epochs if finetune else None)  # fmt: skip
    except MoEError as exc:
        fail(exc)
    path = fitted.save(get_settings().data_dir / "router")
    experts = fitted.head.experts if fitted.head else []
    summary = {"saved": str(path), "experts": experts, "null_threshold": fitted.null_threshold}
    typer.echo(json.dumps({**summary, "encoder": fitted.encoder_dir}))


@eval_app.command("routing")
def eval_routing(
    exemplars: ExemplarsOpt,
    test: Annotated[Path, typer.Option("--test", help="JSONL {text, label} to score.")],
    label_field: LabelOpt = "label",
    fine_label_field: FineOpt = None,
    oos_label: OosOpt = "oos",
    validation: Annotated[Path | None, typer.Option(help="Fit the head + null threshold (tuned here).")] = None,
    finetune: Annotated[
        bool, typer.Option("--finetune", help="With --validation: as `moe router fit --finetune`.")
    ] = False,
    finetune_epochs: EpochsOpt = 1.0,
    strategy: Annotated[str, typer.Option(help="Strategy when no --validation is given.")] = "knn",
    as_json: Annotated[bool, typer.Option("--json")] = False,
    plot: Annotated[Path | None, typer.Option(help="Write a confusion matrix PNG here.")] = None,
) -> None:
    """Route every TEST text and print accuracy, macro-F1, per-class and OOS recall, abstain rate, latency."""
    from router.data import load_examples
    from router.evaluation import evaluate_fitted, evaluate_router, experts_from_examples
    from router.fitting import encoder_for
    from router.router import Router

    try:
        rows = load_examples(test, label_field, fine_field=fine_label_field)
        if validation:
            epochs = finetune_epochs if finetune else None
            fitted = _fit(exemplars, validation, label_field, fine_label_field, oos_label, 0.9, epochs)
            report = evaluate_fitted(fitted, encoder_for(fitted) if finetune else _encoder(), rows, oos_label)
        else:
            router = Router(_encoder())
            train = load_examples(exemplars, label_field, fine_field=fine_label_field)
            router.refresh(experts_from_examples(train, oos_label), "eval")
            report = evaluate_router(router, rows, strategy, oos_label)
    except MoEError as exc:
        fail(exc)
    predicted = report.pop("predicted")
    if plot:
        from router.plots import confusion_png

        confusion_png([e.label for e in rows], predicted, plot)
    typer.echo(json.dumps(report) if as_json else json.dumps(report, indent=2))


def _outcome_rows(path: Path, skill_fields: list[str]) -> list[dict[str, Any]]:
    """Rows {query, outcomes, skill}: the skill is the named fields joined as a path, coarse to fine
    ("mmlu/college_physics"), or None where a row lacks one of them."""
    from router.data import jsonl_rows

    rows = []
    for number, row in jsonl_rows(path):
        if (
            not isinstance(row, dict)
            or not isinstance(row.get("query"), str)
            or not isinstance(row.get("outcomes"), dict)
        ):
            raise InvalidRequest(
                f"{path}:{number}: needs 'query' (text) and 'outcomes' (expert -> score)", param=str(path)
            )
        try:
            outcomes = {str(k): float(v) for k, v in row["outcomes"].items()}
        except (TypeError, ValueError):
            raise InvalidRequest(f"{path}:{number}: every outcome must be a number", param=str(path)) from None
        parts = [row.get(field) for field in skill_fields]
        skill = "/".join(str(p) for p in parts) if skill_fields and all(p not in (None, "") for p in parts) else None
        rows.append({"query": row["query"], "outcomes": outcomes, "skill": skill})
    if not rows:
        raise InvalidRequest(f"{path} has no rows", param=str(path))
    if skill_fields and not any(r["skill"] for r in rows):
        raise InvalidRequest(f"no row of {path} has the skill field(s) {', '.join(skill_fields)}", param="skill-field")
    return rows


@eval_app.command("cost-quality")
def eval_cost_quality(
    outcomes: Annotated[Path, typer.Option(help="JSONL {query, outcomes: {expert: score}} to learn from.")],
    test: Annotated[Path, typer.Option(help="JSONL in the same shape to score.")],
    strong: Annotated[str | None, typer.Option(help="Expensive expert (default: best mean outcome).")] = None,
    weak: Annotated[str | None, typer.Option(help="Cheap expert (default: worst mean outcome).")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    plot: Annotated[Path | None, typer.Option(help="Write the quality vs strong-call curve PNG here.")] = None,
    skill_field: Annotated[
        list[str] | None,
        typer.Option(
            help="Field holding an outcome row's skill; repeat it for a path, coarse to fine "
            "(--skill-field benchmark --skill-field subject). Skills teach the tagger and the profiles."
        ),
    ] = None,
    tune: Annotated[
        bool,
        typer.Option(
            help="Choose k, the pull towards the skill prior and the skill floor by leave-one-out on the "
            "outcomes (64 settings: slower) instead of taking the MOE_ROUTER_QUALITY_* settings."
        ),
    ] = False,
) -> None:
    """RouteLLM's metrics (APGR, CPT(50%), CPT(80%)) for the outcome-kNN cost-quality router."""
    from router.evaluation import cost_quality
    from router.router import quality_params

    try:
        train, rows = _outcome_rows(outcomes, skill_field or []), _outcome_rows(test, [])
        means: dict[str, list[float]] = {}
        for row in train:
            for expert, score in row["outcomes"].items():
                means.setdefault(expert, []).append(score)
        ranked = sorted(means, key=lambda e: sum(means[e]) / len(means[e]))
        if len(ranked) < 2:
            raise InvalidRequest("the outcomes name fewer than two experts", param="outcomes")
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console) as bar:
            task = bar.add_task("encoding outcomes", total=None)
            report = cost_quality(
                _encoder(), train, rows, strong or ranked[-1], weak or ranked[0], quality_params(get_settings()),
                tune, progress=lambda what: bar.update(task, description=what),
            )  # fmt: skip
    except MoEError as exc:
        fail(exc)
    if plot:
        from router.plots import curve_png

        curve_png(report["points"], report["strong_quality"], report["weak_quality"], plot)
    typer.echo(json.dumps(report) if as_json else json.dumps(report, indent=2))
