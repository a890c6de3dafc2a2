"""Request bodies of the OpenAI-compatible API, with our one extension: ``steering``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class SteeringEntry(BaseModel):
    """One vector to add; several entries add up (composition)."""

    model_config = ConfigDict(extra="forbid")
    vector: str = Field(description="a published vector's name (GET /v1/vectors)")
    intensity: float = 0.4
    layers: list[int] | None = Field(None, description="default: the vector's own layer")
    mode: str = Field("relative", description="relative, raw or adaptive")
    positions: str = Field("all", description="all, or generated (from the last prompt token on)")


class Message(BaseModel):
    role: str
    content: str | list[dict]

    def text(self) -> str:
        """The content as text; OpenAI's content parts keep their text parts."""
        if isinstance(self.content, str):
            return self.content
        return "".join(p.get("text", "") for p in self.content if isinstance(p, dict))


class _Common(BaseModel):
    model_config = ConfigDict(extra="ignore")  # other OpenAI fields are accepted and not used
    model: str
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    temperature: float = 1.0  # OpenAI's default
    top_p: float = 1.0
    seed: int | None = None
    stream: bool = False
    n: int = 1
    steering: list[SteeringEntry] = Field(default_factory=list)

    def token_budget(self, default: int) -> int:
        return self.max_completion_tokens or self.max_tokens or default


class ChatRequest(_Common):
    messages: list[Message]


class CompletionRequest(_Common):
    prompt: str | list[str]

    def text(self) -> str:
        return self.prompt if isinstance(self.prompt, str) else "".join(self.prompt)
