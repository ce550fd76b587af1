"""Pydantic shapes of an expert: what users send, what the registry returns."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,127}$"


class ExpertKind(StrEnum):
    local = "local"
    lora = "lora"
    litellm = "litellm"


class ExpertSpec(BaseModel):
    """An expert as a user declares it (API body, CLI flags, seed file)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN, description="Unique; also usable as the request's `model`.")
    kind: ExpertKind
    base_model: str | None = Field(default=None, description="Local base model id (local and lora kinds).")
    adapter_path: str | None = Field(default=None, description="PEFT adapter folder, inside the model dir.")
    litellm_model: str | None = Field(default=None, description="litellm model string, e.g. openai/gpt-4o.")
    api_base: str | None = None
    api_key_env: str | None = Field(default=None, description="Name of the env var holding the API key.")
    description: str = ""
    skills: list[str] = Field(default_factory=list)
    exemplars: list[str] = Field(default_factory=list)
    cost_per_1k_tokens: float = Field(default=0.0, ge=0)
    enabled: bool = True

    @field_validator("skills", "exemplars")
    @classmethod
    def _strip_blank(cls, values: list[str]) -> list[str]:
        return [v.strip() for v in values if v.strip()]

    @model_validator(mode="after")
    def _fields_for_kind(self) -> ExpertSpec:
        required = {
            ExpertKind.local: ["base_model"],
            ExpertKind.lora: ["base_model", "adapter_path"],
            ExpertKind.litellm: ["litellm_model"],
        }[self.kind]
        missing = [f for f in required if not getattr(self, f)]
        if missing:
            raise ValueError(f"an expert of kind '{self.kind}' needs {', '.join(missing)}")
        return self


class ExpertUpdate(BaseModel):
    """A partial update; only the given fields change."""

    model_config = ConfigDict(extra="forbid")

    description: str | None = None
    skills: list[str] | None = None
    exemplars: list[str] | None = None
    cost_per_1k_tokens: float | None = Field(default=None, ge=0)
    enabled: bool | None = None
    api_base: str | None = None
    api_key_env: str | None = None


class ExpertOut(ExpertSpec):
    model_config = ConfigDict(extra="forbid", from_attributes=True)

    id: int
    created_at: datetime
    updated_at: datetime
