"""`moe workflows add|list|validate|run|schema|remove`: the same functions as /admin/workflows."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from agents.workflow_spec import WorkflowSpec, parse_workflow, workflow_json_schema
from agents.workflow_store import AggregatorChoiceRepository, WorkflowRepository
from api.cli_common import fail, registry_session
from core.errors import MoEError
from core.settings import get_settings

app = typer.Typer(help="Declarative workflows, invoked as model 'moe:<name>'.", no_args_is_help=True)
console = Console()
FileArg = Annotated[Path, typer.Argument(help="A workflow definition, YAML or JSON.")]


@contextmanager
def _store() -> Iterator[WorkflowRepository]:
    with registry_session() as session:
        yield WorkflowRepository(session)


@contextmanager
def _choices() -> Iterator[AggregatorChoiceRepository]:
    with _store() as repo:
        yield AggregatorChoiceRepository(repo.session)


def _read(path: Path) -> WorkflowSpec:
    try:
        return parse_workflow(path.read_text(encoding="utf-8"))
    except OSError as exc:
        console.print(f"[red]error[/red]: cannot read {path}: {exc.strerror}")
        raise typer.Exit(code=2) from exc


@app.command("add")
def add(path: FileArg, replace: Annotated[bool, typer.Option(help="Overwrite a same-named workflow.")] = False) -> None:
    """Validate a definition against the registry and store it."""
    try:
        spec = _read(path)
        with _store() as repo:
            saved = repo.save(spec, replace=replace)
    except MoEError as exc:
        fail(exc)
    console.print(f"saved workflow '{saved.name}'; call it as model 'moe:{saved.name}'")


@app.command("validate")
def validate(path: FileArg) -> None:
    """Check a definition (schema, cycles, experts, k) without storing it."""
    try:
        spec = _read(path)
        with _store() as repo:
            repo.validate(spec)
    except MoEError as exc:
        fail(exc)
    console.print(f"workflow '{spec.name}' is valid")


@app.command("list")
def list_(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List the stored workflows."""
    with _store() as repo:
        workflows = repo.list()
    if as_json:
        typer.echo(json.dumps([w.model_dump(mode="json") for w in workflows], indent=2))
        return
    table = Table("name", "aggregator", "steps", "description")
    for w in workflows:
        spec = w.spec()
        aggregator = spec.aggregator.type if spec.aggregator else "(router's choice)"
        table.add_row(w.name, aggregator, ", ".join(s.id for s in spec.steps), w.description)
    console.print(table)


@app.command("remove")
def remove(name: str) -> None:
    """Delete a stored workflow."""
    try:
        with _store() as repo:
            repo.remove(name)
    except MoEError as exc:
        fail(exc)
    console.print(f"removed workflow '{name}'")


@app.command("calibrate")
def calibrate_cmd(
    path: Annotated[Path, typer.Argument(help="JSONL: {task, question, gold, answers: [{expert, weight, text}]}.")],
    dry_run: Annotated[bool, typer.Option(help="Print the choices without storing them.")] = False,
) -> None:
    """Per-task aggregator choice (Symbolic-MoE): score each aggregator per task on labelled answers, keep the best."""
    from agents.aggregators import MajorityVote, PassThrough
    from agents.per_task import calibrate, read_validation_rows

    try:
        rows = read_validation_rows(path.read_text(encoding="utf-8").splitlines())
        choices = asyncio.run(calibrate(rows, {"pass-through": PassThrough(), "majority-vote": MajorityVote()}))
        if not dry_run:
            with _choices() as repo:
                repo.store(choices)
    except MoEError as exc:
        fail(exc)
    except OSError as exc:
        console.print(f"[red]error[/red]: cannot read {path}: {exc.strerror}")
        raise typer.Exit(code=2) from exc
    typer.echo(json.dumps({task: c.model_dump() for task, c in choices.items()}, indent=2))


@app.command("choices")
def choices_cmd() -> None:
    """Show the stored per-task aggregator choices (used by aggregator type 'per-task')."""
    with _choices() as repo:
        stored = repo.all()
    typer.echo(json.dumps({task: c.model_dump() for task, c in stored.items()}, indent=2))


@app.command("schema")
def schema() -> None:
    """Print the JSON Schema of a workflow definition."""
    typer.echo(json.dumps(workflow_json_schema(), indent=2))


def _run(spec: WorkflowSpec, text: str, max_tokens: int | None) -> Any:
    from agents.graph import QueryGraph
    from agents.runtime import Runtime
    from experts.generation import GenerationRequest

    settings = get_settings()
    runtime = Runtime.build(settings)

    async def go() -> Any:
        try:
            request = GenerationRequest([{"role": "user", "content": text}], max_tokens or settings.default_max_tokens)
            return await QueryGraph(runtime).run(request, workflow=spec)
        finally:
            await runtime.aclose()

    return asyncio.run(go())


@app.command("run")
def run(
    name: str,
    text: str,
    max_tokens: Annotated[int | None, typer.Option()] = None,
    trace: Annotated[bool, typer.Option(help="Print every node's record as JSON.")] = False,
) -> None:
    """Answer TEXT with the stored workflow NAME."""
    try:
        with _store() as repo:
            spec = repo.get(name).spec()
        state = _run(spec, text, max_tokens)
    except MoEError as exc:
        fail(exc)
    console.print(state["result"].text)
    console.print(f"[dim]nodes: {' -> '.join(n['node'] for n in state['nodes'])}[/dim]")
    if trace:
        typer.echo(json.dumps(state["nodes"], indent=2, default=str))
