"""All configuration in one place: `MOE_*` environment variables (or a `.env` file)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[1]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MOE_", env_file=".env", extra="ignore")

    data_dir: Path = Field(
        default=Path.home() / ".moe-router",
        description="Where the registry DB, converted models, adapters and indexes live.",
    )
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default is a SQLite file under data_dir."
    )
    redis_url: str | None = Field(default=None, description="Set to use the Celery executor.")
    admin_key: str | None = Field(default=None, description="API key for /admin endpoints.")
    host: str = "127.0.0.1"
    port: int = 8000
    device: str = Field(default="auto", description="'auto', 'cpu' or 'cuda'.")
    default_max_tokens: int = Field(default=64, ge=1, description="max_tokens when a request names none.")
    max_tokens_limit: int = Field(default=1024, ge=1, description="Largest max_tokens a request may ask.")
    max_query_chars: int = Field(default=8000, ge=16, description="Longer queries are truncated for routing.")
    batch_window_ms: float = Field(default=8.0, ge=0, description="Micro-batching window per expert.")
    max_batch_size: int = Field(default=32, ge=1)
    seed_adapter_steps: int = Field(default=30, ge=1, description="Training steps per demo LoRA adapter.")
    seed_data_dir: Path = Field(
        default=REPO_ROOT.parent / "shared" / "bench" / "data",
        description="Public data the demo adapters are trained on (GSM8K, MMLU, MT-Bench JSONL).",
    )
    remote_timeout_s: float = Field(default=120.0, gt=0)
    batch_chunk_size: int = Field(default=32, ge=1, description="Calls per batched task in a batch job.")
    batch_poll_s: float = Field(default=0.5, gt=0, description="How often a batch job checks progress.")
    max_batch_file_bytes: int = Field(default=100 * 1024 * 1024, ge=1, description="Largest batch upload.")
    max_batch_lines: int = Field(default=50_000, ge=1, description="Most requests in one batch input file.")
    celery_visibility_timeout_s: float = Field(
        default=600.0,
        gt=0,
        description="A task a dead worker held goes back to its queue after this long (Redis broker).",
    )
    remote_max_retries: int = Field(default=3, ge=0, description="Celery retries for a failed remote expert call.")
    remote_retry_backoff_s: float = Field(default=2.0, ge=0, description="First retry delay; doubles each time.")
    api_url: str | None = Field(default=None, description="Server the `moe batch` commands talk to.")

    router_strategy: str = Field(default="knn", description="Strategy behind `moe:auto` (knn, head, skills, cost).")
    router_shared_expert: str | None = Field(default=None, description="Always consulted on top of routed experts.")
    router_fallback_expert: str | None = Field(
        default=None, description="Out-of-scope queries (null expert) go here; unset keeps the routed choice, flagged."
    )
    router_null_threshold: float | None = Field(
        default=None, description="Override the in-scope threshold that `moe router fit` calibrates."
    )
    router_max_outcomes: int = Field(default=200_000, ge=0, description="Newest outcomes loaded at start.")
    router_lanes: int | None = Field(
        default=None, ge=1, description="Threads that encode routing batches side by side under load (default: cores)."
    )
    # Cost-quality predictions; unset: what leave-one-out picks on RouteLLM's outcomes (128, 1.0, 0.1).
    # `moe eval cost-quality --tune` suggests values for your own outcomes.
    router_quality_neighbours: int | None = Field(default=None, ge=1, description="Past queries per prediction.")
    router_quality_shrink: float | None = Field(
        default=None, ge=0, description="Pull of a prediction towards the experts' record on the query's skills."
    )
    router_quality_skill_floor: float | None = Field(
        default=None, ge=0, description="Weight a neighbour of a skill the query unlikely needs keeps."
    )

    models_path: Path | None = Field(
        default=None,
        validation_alias="MOE_MODEL_DIR",
        description="Converted models and adapters; user-given adapter paths are confined here. "
        "Default: data_dir/models.",
    )

    @property
    def model_dir(self) -> Path:
        return self.models_path or self.data_dir / "models"

    @property
    def sqlalchemy_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'registry.db'}"

    def ensure_dirs(self) -> None:
        self.model_dir.mkdir(parents=True, exist_ok=True)


@lru_cache
def get_settings() -> Settings:
    return Settings()
