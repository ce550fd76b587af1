"""`moe`: a thin command line over the same functions the API uses."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

import core.env  # noqa: F401  (offline defaults before heavy imports)
from api.cli_adapters import adapters_app
from api.cli_batch import batch_app, worker
from api.cli_common import fail, registry_session
from api.cli_router import eval_app, router_app
from api.cli_workflows import app as workflows_app
from core.errors import MoEError
from core.logging import configure_logging
from core.settings import get_settings
from experts.bundled import check_base_model
from experts.repository import ExpertRepository
from experts.schemas import ExpertKind, ExpertSpec

app = typer.Typer(help="moe-router: a model-level mixture of experts, served.", no_args_is_help=True)
experts_app = typer.Typer(help="Manage the expert registry.", no_args_is_help=True)
app.add_typer(experts_app, name="experts")
app.add_typer(adapters_app, name="adapters")
app.add_typer(batch_app, name="batch")
app.command()(worker)
app.add_typer(workflows_app, name="workflows")
app.add_typer(router_app, name="router")
app.add_typer(eval_app, name="eval")
console = Console()


@contextmanager
def _repository() -> Iterator[ExpertRepository]:
    with registry_session() as session:
        yield ExpertRepository(session, get_settings().model_dir, check_base_model)


@app.command()
def init() -> None:
    """Migrate the DB, convert the bundled model once and seed the default registry."""
    from agents.prestart import prepare

    configure_logging()
    seeded = prepare(get_settings())
    console.print(f"ready; seeded: {', '.join(seeded) or 'nothing (registry already has experts)'}")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (MOE_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (MOE_PORT).")] = None,
) -> None:
    """Prepare (idempotent) and serve the API."""
    import uvicorn

    from agents.prestart import prepare
    from api.app import create_app

    configure_logging()
    settings = get_settings()
    prepare(settings)
    uvicorn.run(create_app(settings), host=host or settings.host, port=port or settings.port)


@experts_app.command("list")
def experts_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List the registered experts."""
    with _repository() as repo:
        experts = repo.list()
    if as_json:
        typer.echo(json.dumps([e.model_dump(mode="json") for e in experts], indent=2))
        return
    table = Table("name", "kind", "enabled", "skills", "exemplars", "cost/1k")
    for e in experts:
        table.add_row(
            e.name,
            e.kind,
            str(e.enabled),
            ", ".join(e.skills),
            str(len(e.exemplars)),
            str(e.cost_per_1k_tokens),
        )
    console.print(table)


@experts_app.command("add")
def experts_add(
    name: str,
    kind: Annotated[ExpertKind, typer.Option()],
    base_model: Annotated[str | None, typer.Option()] = None,
    adapter_path: Annotated[str | None, typer.Option()] = None,
    litellm_model: Annotated[str | None, typer.Option()] = None,
    api_base: Annotated[str | None, typer.Option()] = None,
    api_key_env: Annotated[str | None, typer.Option()] = None,
    description: Annotated[str, typer.Option()] = "",
    skill: Annotated[list[str] | None, typer.Option(help="Repeat for several skills.")] = None,
    exemplar: Annotated[list[str] | None, typer.Option(help="Repeat for several exemplars.")] = None,
    cost_per_1k_tokens: Annotated[float, typer.Option()] = 0.0,
) -> None:
    """Register an expert."""
    fields: dict[str, Any] = {
        "name": name, "kind": kind, "base_model": base_model, "adapter_path": adapter_path,
        "litellm_model": litellm_model, "api_base": api_base, "api_key_env": api_key_env,
        "description": description, "skills": skill or [], "exemplars": exemplar or [],
        "cost_per_1k_tokens": cost_per_1k_tokens,
    }  # fmt: skip
    try:
        spec = ExpertSpec.model_validate(fields)
        with _repository() as repo:
            added = repo.add(spec)
    except MoEError as exc:
        fail(exc)
    except ValueError as exc:  # pydantic's ValidationError
        console.print(f"[red]error[/red]: {exc}")
        raise typer.Exit(code=2) from exc
    console.print(f"added expert '{added.name}' ({added.kind})")


@experts_app.command("remove")
def experts_remove(name: str) -> None:
    """Remove an expert."""
    try:
        with _repository() as repo:
            repo.remove(name)
    except MoEError as exc:
        fail(exc)
    console.print(f"removed expert '{name}'")


def _run_graph(text: str, model: str, max_tokens: int | None) -> Any:
    from agents.graph import QueryGraph
    from agents.runtime import Runtime
    from api.models import resolve_model
    from experts.generation import GenerationRequest

    settings = get_settings()
    target = resolve_model(model)
    runtime = Runtime.build(settings)

    async def go() -> Any:
        try:
            request = GenerationRequest([{"role": "user", "content": text}], max_tokens or settings.default_max_tokens)
            return await QueryGraph(runtime).run(request, strategy=target.strategy, expert=target.expert)
        finally:
            await runtime.aclose()

    return asyncio.run(go())


@app.command()
def route(text: str, model: Annotated[str, typer.Option()] = "moe:auto", k: int = 1) -> None:
    """Show the routing decision for TEXT."""
    from agents.runtime import Runtime
    from api.models import resolve_model

    try:
        target = resolve_model(model)
        runtime = Runtime.build(get_settings())
        decision = runtime.router.route(text, target.strategy, k)
    except MoEError as exc:
        fail(exc)
    typer.echo(decision.model_dump_json(indent=2))


@app.command()
def chat(
    text: str,
    model: Annotated[str, typer.Option()] = "moe:auto",
    max_tokens: Annotated[int | None, typer.Option()] = None,
) -> None:
    """Answer TEXT through the router and the chosen expert(s)."""
    try:
        state = _run_graph(text, model, max_tokens)
    except MoEError as exc:
        fail(exc)
    console.print(state["result"].text)
    console.print(f"[dim]routed to {', '.join(state['decision'].expert_names)} ({state['decision'].strategy})[/dim]")
