"""Prompts as the model expects them: its chat template when it has one, plain text otherwise."""

from __future__ import annotations


def format_chat(tokenizer, user: str, system: str | None = None, assistant_prefix: str = "") -> str:
    """Chat template when the tokenizer has one, plain text otherwise."""
    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": user}
    ]
    return format_messages(tokenizer, messages) + assistant_prefix


def format_messages(tokenizer, messages: list[dict]) -> str:
    """A whole conversation, ready for the assistant's next turn."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return "".join(f"{m['content']}\n" for m in messages)
