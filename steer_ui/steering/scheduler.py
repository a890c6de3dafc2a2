"""One scheduler per loaded model: every generation (UI and API alike) becomes rows of
one running batch, each row with its own prompt, steering, sampling and length.

Continuous batching: requests that arrive while the batch runs are prefilled together
(one forward pass, prompts left-padded to one length; a request's rows share its prompt)
and join the batch before the next decode step; the KV caches are left-padded to one
length and concatenated along the batch. A row that ends (end of text, its token budget, its
request stopped) leaves the batch at the next step, so it stops costing compute. Each
step holds the model's lock for one forward pass only, so recording or scoring from
another user interleaves between steps instead of waiting for whole generations.

Joining needs every KV cache layer to be a plain full-attention ``DynamicLayer``;
models with sliding-window layers (Gemma 3) run one request's batch at a time instead
(``Scheduler.joins``).
"""

from __future__ import annotations

import math
import queue
import threading
import time
import weakref
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from transformers.cache_utils import DynamicCache, DynamicLayer

from ..errors import ResourceError, SteerError, is_out_of_memory
from ..models.tokens import token_ids
from .hooks import POSITIONS, Push, check_pushes, row_hooks


@dataclass(frozen=True)
class Sampling:
    """How a request picks its tokens; ``temperature`` 0 is greedy. Each row samples with
    its own ``torch.Generator`` seeded with ``seed``: a row is what it would be alone,
    whatever else runs (the process-wide RNG is never used)."""

    max_new_tokens: int = 48
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0

    def check(self) -> None:
        if not 1 <= self.max_new_tokens <= 4096:
            raise SteerError(f"max new tokens must be 1..4096, not {self.max_new_tokens}.")
        if not (math.isfinite(self.temperature) and 0 <= self.temperature <= 10):
            raise SteerError(f"temperature must be 0 (greedy) to 10, not {self.temperature}.")
        if not 0 < self.top_p <= 1:
            raise SteerError(f"top-p must be in (0, 1], not {self.top_p}.")


@dataclass
class Ticket:
    """What the submitter holds: events arrive on ``events`` (see ``Scheduler.submit``).
    Any of ``stops`` set ends all its rows at the next step (and no one else's)."""

    rows: int
    stops: tuple[threading.Event, ...]
    prompt_tokens: int = 0
    budget: int = 0  # max new tokens per row
    events: queue.Queue = field(default_factory=queue.Queue)
    told_waiting: bool = False
    tokens: list[list[int]] = field(default_factory=list)  # per row, as generated so far
    submitted: float = field(default_factory=time.perf_counter)
    started: float | None = None  # first forward pass of this request

    @property
    def stopped(self) -> bool:
        return any(s.is_set() for s in self.stops)


@dataclass
class _Row:
    ticket: Ticket
    index: int  # which row of its ticket
    pushes: tuple[Push, ...]
    sampling: Sampling
    generator: torch.Generator | None
    length: int  # real (unpadded) tokens in the cache for this row
    next_token: int = -1
    done: bool = False
    slot: int | None = None  # the engine's own handle for the row (llama.cpp: its sequence id)


@dataclass
class _Pending:
    ticket: Ticket
    ids: list[int]
    rows: list[tuple[Push, ...]]
    sampling: Sampling
    positions: str


class Scheduler:
    """The batching scheduler of one ``LoadedModel``; start it with ``start()`` (lazily
    done by ``for_model``). ``max_batch`` rows run at most; ``window_ms``: how long an
    idle scheduler waits for more requests before it starts a batch."""

    def __init__(self, lm, max_batch: int = 16, window_ms: float = 5.0):
        self.lm, self.max_batch, self.window = lm, max_batch, window_ms / 1000
        self.inbox: queue.Queue = queue.Queue()
        self.rows: list[_Row] = []
        self.cache = None  # DynamicCache of the running batch
        self.mask: torch.Tensor | None = None  # (rows, cache length): 1 where a row has a real token
        self.steps, self.prefills = 0, 0  # forward passes run (tests and benchmarks read them)
        self.joins = _full_attention(lm)  # whether requests may join a running batch
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # ---------- the public side ----------

    def submit(self, text: str, rows: Sequence[Sequence[Push]], sampling: Sampling = Sampling(),
               positions: str = "all", stops: Sequence[threading.Event] = ()) -> Ticket:
        """Queue one prompt with one row per entry of ``rows`` (each row's pushes add up).

        Events on ``ticket.events``: ("waiting",) while the batch is full, ("tokens",
        rows_of_new_ids) after every step, then ("done", None) or ("error", exc).
        """
        check_pushes(self.lm, rows)
        sampling.check()
        if positions not in POSITIONS:
            raise SteerError(f"Unknown positions {positions!r}: use {', '.join(POSITIONS)}.")
        ids = token_ids(self.lm, [text])[0]
        ticket = Ticket(len(rows), tuple(stops) or (threading.Event(),), len(ids), sampling.max_new_tokens)
        ticket.tokens = [[] for _ in rows]
        self.inbox.put(_Pending(ticket, ids, [tuple(r) for r in rows], sampling, positions))
        self.start()
        return ticket

    def start(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, daemon=True,
                                                name=f"steer-ui-scheduler-{self.lm.name}")
                self._thread.start()

    # ---------- the scheduler thread ----------

    def _loop(self) -> None:
        while True:
            if not self.rows:
                try:
                    first = self.inbox.get(timeout=30)
                except queue.Empty:
                    return  # idle: the thread ends; the next submit starts another
                time.sleep(self.window)  # a few ms for others to arrive: one batch for all
                self._admit([first])
            self._admit([])
            if self.rows:
                self._step()

    def _admit(self, pending: list[_Pending]) -> None:
        """Prefill waiting requests that fit, and join them to the batch."""
        while True:
            try:
                pending.append(self.inbox.get_nowait())
            except queue.Empty:
                break
        keep, admit, rows = [], [], len(self.rows)
        for p in pending:
            if p.ticket.stopped:
                p.ticket.events.put(("done", None))
            elif rows + len(p.rows) <= self.max_batch and self._may_join(rows, admit):
                admit.append(p)
                rows += len(p.rows)
            else:
                if not p.ticket.told_waiting:
                    p.ticket.events.put(("waiting",))
                    p.ticket.told_waiting = True
                keep.append(p)
        for mode in POSITIONS:  # one prefill per positions mode: its hooks start at one column
            group = [p for p in admit if p.positions == mode]
            if group:
                self._prefill(group)
        for p in keep:  # back in the queue, in order, for the next step
            self.inbox.put(p)
        if keep and not self.rows:
            time.sleep(0.001)

    def _may_join(self, rows: int, admit: list[_Pending]) -> bool:
        """Full-attention caches take any number of requests; sliding-window ones one at a time."""
        return self.joins or (not rows and not admit)

    def _prefill(self, group: list[_Pending]) -> None:
        """One forward pass for the prompts of ``group``, left-padded to one length (the
        rows of one request share its prompt)."""
        lm = self.lm
        prompts = [p.ids for p in group for _ in p.rows]
        width = max(map(len, prompts))
        pad = lm.tokenizer.pad_token_id or 0
        ids = torch.tensor([[pad] * (width - len(x)) + x for x in prompts], device=lm.device)  # (rows, width)
        mask = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in prompts], device=lm.device)
        positions = (mask.cumsum(1) - 1).clamp(min=0)
        start = width - 1 if group[0].positions == "generated" else 0
        pushes = [r for p in group for r in p.rows]
        try:
            with self._model_lock([p.ticket for p in group]), row_hooks(lm, pushes, start), torch.inference_mode():
                now = time.perf_counter()
                for p in group:
                    p.ticket.started = now
                out = lm.model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True,
                               logits_to_keep=1)
        except Exception as exc:  # noqa: BLE001 - reported to the requests it concerns
            for p in group:
                self._fail(p.ticket, exc)
            return
        self.prefills += 1
        rows = [_Row(p.ticket, i, r, p.sampling, _generator(p.sampling, lm), len(p.ids))
                for p in group for i, r in enumerate(p.rows)]
        for row, logits in zip(rows, out.logits[:, -1].float()):
            row.next_token = _pick(logits, row)
        self._join(rows, out.past_key_values, mask)
        self._publish(rows)

    def _join(self, rows: list[_Row], cache, mask: torch.Tensor) -> None:
        if self.cache is None:
            self.cache, self.mask, self.rows = cache, mask, rows
            return
        width = max(self.mask.shape[1], mask.shape[1])
        for mine, theirs in zip(self.cache.layers, cache.layers):  # left-pad both to one length
            mine.keys = torch.cat([_pad_left(mine.keys, width), _pad_left(theirs.keys, width)])
            mine.values = torch.cat([_pad_left(mine.values, width), _pad_left(theirs.values, width)])
        self.mask = torch.cat([_pad_left(self.mask, width), _pad_left(mask, width)])
        self.rows = self.rows + rows

    def _step(self) -> None:
        lm = self.lm
        ids = torch.tensor([[r.next_token] for r in self.rows], device=lm.device)  # (rows, 1)
        positions = torch.tensor([[r.length] for r in self.rows], device=lm.device)
        mask = torch.cat([self.mask, torch.ones(len(self.rows), 1, dtype=self.mask.dtype, device=lm.device)], 1)
        try:
            with self._model_lock([r.ticket for r in self.rows]), row_hooks(lm, [r.pushes for r in self.rows]), \
                    torch.inference_mode():
                out = lm.model(input_ids=ids, attention_mask=mask, position_ids=positions,
                               past_key_values=self.cache, use_cache=True)
        except Exception as exc:  # noqa: BLE001 - a failed step fails the requests in it
            for t in {id(r.ticket): r.ticket for r in self.rows}.values():
                self._fail(t, exc)
            self.rows, self.cache, self.mask = [], None, None
            return
        self.steps += 1
        self.cache, self.mask = out.past_key_values, mask
        for row, logits in zip(self.rows, out.logits[:, -1].float()):
            row.length += 1
            row.next_token = _pick(logits, row)
        self._publish(self.rows)

    @contextmanager
    def _model_lock(self, tickets: list[Ticket]):
        """The model's lock for one forward pass; when someone else holds it (a recording,
        a scoring run), the requests waiting on it are told before the wait."""
        lock = self.lm.lock
        if not lock.acquire(blocking=False):
            for t in {id(t): t for t in tickets}.values():
                t.events.put(("waiting",))
            lock.acquire()
        try:
            yield
        finally:
            lock.release()

    def _publish(self, rows: list[_Row]) -> None:
        """Hand each request its rows' new tokens; drop the rows that ended, and tell a
        request it is done when none of its rows is left."""
        eos = eos_ids(self.lm)
        tickets = {id(r.ticket): r.ticket for r in rows}
        for r in rows:
            tokens = r.ticket.tokens[r.index]
            if r.ticket.stopped:
                r.done = True
                continue
            tokens.append(r.next_token)
            r.done = r.next_token in eos or len(tokens) >= r.sampling.max_new_tokens
        for t in tickets.values():
            t.events.put(("tokens", [list(x) for x in t.tokens]))
        self._drop([i for i, r in enumerate(self.rows) if not r.done])
        left = {id(r.ticket) for r in self.rows}
        for key, t in tickets.items():
            if key not in left:
                t.events.put(("done", None))

    def _drop(self, keep: list[int]) -> None:
        if len(keep) == len(self.rows):
            return
        if not keep:
            self.rows, self.cache, self.mask = [], None, None
            return
        index = torch.tensor(keep, device=self.mask.device)
        self.cache.batch_select_indices(index)
        self.mask = self.mask[index]
        self.rows = [self.rows[i] for i in keep]
        lead = int((self.mask.cumsum(1) == 0).sum(1).min())  # columns every row has as padding
        if lead and self.joins:
            for layer in self.cache.layers:
                layer.keys, layer.values = layer.keys[..., lead:, :], layer.values[..., lead:, :]
            self.mask = self.mask[:, lead:]

    def _fail(self, ticket: Ticket, exc: BaseException) -> None:
        if is_out_of_memory(exc):
            exc = ResourceError("Out of memory while generating: use fewer tokens, rows or requests at once.")
        ticket.events.put(("error", exc))


def _pad_left(x: torch.Tensor, width: int) -> torch.Tensor:
    """``x`` (rows, ..., seq, [dim]) padded with zeros on the left of its sequence axis."""
    seq_axis = 1 if x.ndim == 2 else -2
    missing = width - x.shape[seq_axis]
    if missing <= 0:
        return x
    shape = list(x.shape)
    shape[seq_axis] = missing
    return torch.cat([torch.zeros(shape, dtype=x.dtype, device=x.device), x], dim=seq_axis)


def _full_attention(lm) -> bool:
    """Whether every layer of the model's KV cache is a plain full-attention one (asked of
    transformers' own cache for the model's config, so new layer kinds count as not)."""
    try:
        return all(type(layer) is DynamicLayer for layer in DynamicCache(config=lm.model.config).layers)
    except Exception:  # noqa: BLE001 - a config the cache cannot read: the safe answer
        return False


def eos_ids(lm) -> set[int]:
    """The tokens that end a row: the generation config's end of text, and the tokenizer's."""
    eos = lm.model.generation_config.eos_token_id
    eos = [eos] if isinstance(eos, int) else list(eos or [])
    return set(eos) | ({lm.tokenizer.eos_token_id} if lm.tokenizer.eos_token_id is not None else set())


def _generator(d: Sampling, lm) -> torch.Generator | None:
    return torch.Generator(lm.device).manual_seed(d.seed) if d.temperature > 0 else None


def _pick(logits: torch.Tensor, row: _Row) -> int:
    """The row's next token: greedy, or sampled with its own generator (temperature, top-p)."""
    d = row.sampling
    if d.temperature <= 0:
        return int(logits.argmax())
    probs = (logits / d.temperature).softmax(-1)
    if d.top_p < 1:
        ordered, order = probs.sort(descending=True)
        keep = ordered.cumsum(-1) - ordered < d.top_p  # the smallest set whose mass reaches top_p
        probs = torch.zeros_like(probs).scatter_(0, order[keep], ordered[keep])
    return int(torch.multinomial(probs, 1, generator=row.generator))


_MADE = threading.Lock()
DEFAULTS = {"max_batch": 16, "window_ms": 5.0}  # what ``serve --max-batch/--batch-window-ms`` set
_LIVE: "weakref.WeakSet[Scheduler]" = weakref.WeakSet()


def live() -> list[Scheduler]:
    """Every scheduler still alive (tests and benchmarks count the rows in flight)."""
    return list(_LIVE)


def for_model(lm) -> Scheduler:
    """The one scheduler of ``lm`` (made on first use)."""
    with _MADE:
        if lm.scheduler is None:
            lm.scheduler = Scheduler(lm, **DEFAULTS)
            _LIVE.add(lm.scheduler)
        return lm.scheduler
