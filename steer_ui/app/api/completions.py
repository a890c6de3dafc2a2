"""``/v1/models``, ``/v1/chat/completions`` and ``/v1/completions``: one scheduler row per
request, streamed as OpenAI ``chat.completion.chunk`` / ``text_completion`` events or
answered whole. A client that disconnects mid-stream ends its row, and only its row."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from ...steering.engines import scheduler_for
from ...steering.scheduler import Sampling, eos_ids
from .common import ApiError, model_for, pushes_for
from .schemas import ChatRequest, CompletionRequest

router = APIRouter()


@router.get("/v1/models")
def list_models(request: Request) -> dict:
    pool = request.app.state.pool
    return {"object": "list", "data": [
        {"id": name, "object": "model", "created": 0, "owned_by": "steer-ui", "engine": lm.engine or lm.spec.engine,
         "family": lm.family, "n_layers": lm.n_layers, "hidden_size": lm.hidden_size,
         "dtype": str(lm.dtype).removeprefix("torch."), "sessions": pool.users_of(name)}
        for name, lm in pool.loaded.items()]}


@router.post("/v1/chat/completions")
async def chat_completions(body: ChatRequest, request: Request):
    if not body.messages:
        raise ApiError(400, "messages is empty: send at least one message.", param="messages", code="empty")
    lm = model_for(request, body.model)
    text = lm.chat_messages([{"role": m.role, "content": m.text()} for m in body.messages])
    return await _answer(request, body, lm, text, "chat.completion")


@router.post("/v1/completions")
async def completions(body: CompletionRequest, request: Request):
    if not body.text():
        raise ApiError(400, "prompt is empty.", param="prompt", code="empty")
    lm = model_for(request, body.model)
    return await _answer(request, body, lm, body.text(), "text_completion")


async def _answer(request: Request, body, lm, text: str, kind: str):
    config = request.app.state.config
    if body.n != 1:
        raise ApiError(400, "n must be 1: ask again for another sample (with another seed).", param="n")
    budget = body.token_budget(config.default_max_tokens)
    if not 1 <= budget <= config.max_tokens_cap:
        raise ApiError(400, f"max_tokens is {budget}; this server allows 1 to {config.max_tokens_cap}.",
                       param="max_tokens", code="max_tokens_out_of_range")
    pushes, positions = pushes_for(request, lm, body.steering)
    sampling = Sampling(budget, body.temperature, body.top_p, body.seed if body.seed is not None else 0)
    stop = threading.Event()
    ticket = scheduler_for(lm, [pushes], positions).submit(text, [pushes], sampling, positions, (stop,))
    reply = _Reply(lm, kind, body.model)
    if body.stream:
        return StreamingResponse(_events(ticket, stop, reply), media_type="text/event-stream")
    try:
        while (event := await asyncio.to_thread(ticket.events.get))[0] not in ("done", "error"):
            pass
    finally:
        stop.set()
    if event[0] == "error":
        raise event[1]
    return reply.whole(ticket, budget)


class _Reply:
    """OpenAI's response shapes for one row."""

    def __init__(self, lm, kind: str, model: str):
        self.lm, self.kind, self.model = lm, kind, model
        self.id = f"{'chatcmpl' if kind == 'chat.completion' else 'cmpl'}-{uuid.uuid4().hex[:24]}"
        self.created = int(time.time())

    def text(self, tokens: list[int]) -> str:
        return self.lm.tokenizer.decode(tokens, skip_special_tokens=True)

    def finish(self, tokens: list[int], budget: int) -> str:
        return "stop" if tokens and tokens[-1] in eos_ids(self.lm) else ("length" if len(tokens) >= budget else "stop")

    def whole(self, ticket, budget: int) -> dict:
        tokens = ticket.tokens[0]
        n = len(tokens) - (1 if tokens and tokens[-1] in eos_ids(self.lm) else 0)
        choice = {"index": 0, "finish_reason": self.finish(tokens, budget), "logprobs": None}
        if self.kind == "chat.completion":
            choice["message"] = {"role": "assistant", "content": self.text(tokens)}
        else:
            choice["text"] = self.text(tokens)
        return {"id": self.id, "object": self.kind, "created": self.created, "model": self.model,
                "choices": [choice], "usage": {"prompt_tokens": ticket.prompt_tokens, "completion_tokens": n,
                                               "total_tokens": ticket.prompt_tokens + n}}

    def chunk(self, delta: str | None, finish: str | None = None, first: bool = False) -> str:
        if self.kind == "chat.completion":
            body = {"role": "assistant", "content": ""} if first else ({"content": delta} if delta else {})
            choice = {"index": 0, "delta": body, "finish_reason": finish, "logprobs": None}
            obj = "chat.completion.chunk"
        else:
            choice, obj = {"index": 0, "text": delta or "", "finish_reason": finish, "logprobs": None}, "text_completion"
        return "data: " + json.dumps({"id": self.id, "object": obj, "created": self.created, "model": self.model,
                                      "choices": [choice]}) + "\n\n"


async def _events(ticket, stop: threading.Event, reply: _Reply):
    """Server-sent events: the new text after every step, then the finish reason and [DONE]."""
    sent, tokens = "", []
    try:
        if reply.kind == "chat.completion":
            yield reply.chunk(None, first=True)
        while True:
            kind, *payload = await asyncio.to_thread(ticket.events.get)
            if kind == "tokens":
                tokens = payload[0][0]
                text = reply.text(tokens)
                if len(text) > len(sent) and not text.endswith("\ufffd"):  # whole characters only
                    yield reply.chunk(text[len(sent):])
                    sent = text
            elif kind == "error":
                yield "data: " + json.dumps({"error": {"message": str(payload[0]), "type": "server_error"}}) + "\n\n"
                return
            elif kind == "done":
                break
        yield reply.chunk(None, reply.finish(tokens, ticket.budget))
        yield "data: [DONE]\n\n"
    finally:
        stop.set()  # finished, or the client went away: this row leaves the batch
