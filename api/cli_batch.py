"""`moe batch ...` (a client of a running server's Batch API) and `moe worker` (a Celery worker)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from core.settings import Settings, get_settings

batch_app = typer.Typer(help="Submit and follow batch jobs on a moe-router server.", no_args_is_help=True)
console = Console(stderr=True)
DONE = ("completed", "failed", "cancelled", "expired")
UrlOption = Annotated[str | None, typer.Option("--url", help="Server URL (MOE_API_URL; default MOE_HOST:MOE_PORT).")]


def _base_url(url: str | None, settings: Settings) -> str:
    return url or settings.api_url or f"http://{settings.host}:{settings.port}"


def _call(url: str | None, method: str, path: str, **kwargs: Any) -> httpx.Response:
    try:
        response = httpx.request(method, _base_url(url, get_settings()) + path, timeout=120, **kwargs)
    except httpx.HTTPError as exc:
        console.print(f"[red]error[/red]: cannot reach the server: {exc}")
        raise typer.Exit(code=2) from exc
    if response.status_code >= 400:
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = response.text
        console.print(f"[red]error[/red]: {message}")
        raise typer.Exit(code=2)
    return response


@batch_app.command("submit")
def submit(path: Path, url: UrlOption = None) -> None:
    """Upload PATH (OpenAI batch JSONL) and start a batch job; prints the batch id."""
    if not path.is_file():
        console.print(f"[red]error[/red]: no file at {path}")
        raise typer.Exit(code=2)
    files = {"file": (path.name, path.read_bytes(), "application/jsonl")}
    uploaded = _call(url, "POST", "/v1/files", files=files, data={"purpose": "batch"}).json()
    body = {"input_file_id": uploaded["id"], "endpoint": "/v1/chat/completions", "completion_window": "24h"}
    batch = _call(url, "POST", "/v1/batches", json=body).json()
    typer.echo(batch["id"])


@batch_app.command("status")
def status(batch_id: str, url: UrlOption = None) -> None:
    """Print the batch object (status, request_counts, file ids) as JSON."""
    typer.echo(json.dumps(_call(url, "GET", f"/v1/batches/{batch_id}").json(), indent=2))


@batch_app.command("wait")
def wait(
    batch_id: str,
    url: UrlOption = None,
    poll: Annotated[float, typer.Option(help="Seconds between checks.")] = 1.0,
    timeout: Annotated[float | None, typer.Option(help="Give up after this many seconds.")] = None,
) -> None:
    """Show a progress bar until the batch ends; exit 0 only if it completed."""
    deadline = time.monotonic() + timeout if timeout else None
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        bar = progress.add_task(batch_id, total=None)
        while True:
            batch = _call(url, "GET", f"/v1/batches/{batch_id}").json()
            counts = batch["request_counts"]
            progress.update(bar, total=counts["total"], completed=counts["completed"] + counts["failed"],
                            description=f"{batch_id} {batch['status']}")  # fmt: skip
            if batch["status"] in DONE:
                break
            if deadline and time.monotonic() > deadline:
                console.print(f"[red]timeout[/red]: batch still {batch['status']}")
                raise typer.Exit(code=3)
            time.sleep(poll)
    typer.echo(json.dumps(counts | {"status": batch["status"]}))
    if batch["status"] != "completed":
        raise typer.Exit(code=1)


@batch_app.command("download")
def download(
    batch_id: str,
    url: UrlOption = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Output JSONL (default: stdout).")] = None,
    errors: Annotated[Path | None, typer.Option("--errors", help="Write the error file here too.")] = None,
) -> None:
    """Fetch the output file (answers in input order) and, with --errors, the error file."""
    batch = _call(url, "GET", f"/v1/batches/{batch_id}").json()
    if batch["status"] not in DONE:
        console.print(f"[red]error[/red]: batch is still {batch['status']}; run `moe batch wait {batch_id}`")
        raise typer.Exit(code=2)
    text = _call(url, "GET", f"/v1/files/{batch['output_file_id']}/content").text if batch.get("output_file_id") else ""
    if output:
        output.write_text(text)
    else:
        typer.echo(text, nl=False)
    if errors:
        error_id = batch.get("error_file_id")
        errors.write_text(_call(url, "GET", f"/v1/files/{error_id}/content").text if error_id else "")


def default_queues(settings: Settings) -> list[str]:
    """Every expert group in the registry, plus the default queue."""
    from core.db import make_engine, make_session_factory, migrate, session_scope
    from experts.backends.pool import BackendPool
    from experts.bundled import DEFAULT_BASE
    from experts.repository import ExpertRepository
    from workers.celery_app import DEFAULT_QUEUE
    from workers.scheduler import queue_name

    migrate(settings.sqlalchemy_url)
    engine = make_engine(settings.sqlalchemy_url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            experts = ExpertRepository(session, settings.model_dir).list(enabled_only=True)
    finally:
        engine.dispose()
    # The bundled base's queue always: a worker started before the registry is seeded still serves it.
    groups = {f"local:{DEFAULT_BASE}", *(BackendPool.batch_key(e) for e in experts)}
    return sorted({DEFAULT_QUEUE, *(queue_name(g) for g in groups)})


def worker(
    queues: Annotated[str | None, typer.Option(help="Comma-separated queues (default: every expert group).")] = None,
    loglevel: Annotated[str, typer.Option(help="Celery log level.")] = "INFO",
) -> None:
    """Run a Celery worker (needs MOE_REDIS_URL); start more of them to scale out."""
    from workers.celery_app import make_celery, worker_argv

    settings = get_settings()
    if not settings.redis_url:
        console.print("[red]error[/red]: set MOE_REDIS_URL to the Redis the server uses")
        raise typer.Exit(code=2)
    names = [q.strip() for q in queues.split(",") if q.strip()] if queues else default_queues(settings)
    console.print(f"worker consuming: {', '.join(names)}")
    make_celery(settings).worker_main(worker_argv(names, loglevel))
