"""What a caller sends to run an agent."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_INPUT_CHARS = 100_000


class RunParameters(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    wait: bool = Field(
        default=True, description="Answer with the finished execution if it ends in time."
    )
    timeout_s: float = Field(default=30, gt=0, le=300, description="How long to wait.")
    thread_id: str | None = Field(default=None, min_length=1, max_length=200)
    webhook_url: str | None = Field(default=None, max_length=2000)
    executor: str | None = Field(default=None, pattern="^(inline|rq)$")

    @field_validator("webhook_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value


class ExecuteRequest(BaseModel):
    """`input` is the user's message: text, or a JSON object sent to the model as JSON."""

    model_config = ConfigDict(extra="forbid")

    input: str | dict[str, Any]
    parameters: RunParameters = Field(default_factory=RunParameters)

    @field_validator("input")
    @classmethod
    def _bounded_input(cls, value: str | dict[str, Any]) -> str | dict[str, Any]:
        return bounded_input(value)


def bounded_input(value: str | dict[str, Any]) -> str | dict[str, Any]:
    """A run's input, or ValueError when it is empty or too long."""
    import json

    size = len(value) if isinstance(value, str) else len(json.dumps(value))
    if isinstance(value, str) and not value.strip():
        raise ValueError("must not be empty")
    if isinstance(value, dict) and not value:
        raise ValueError("must not be empty")
    if size > MAX_INPUT_CHARS:
        raise ValueError(f"must be at most {MAX_INPUT_CHARS} characters")
    return value
