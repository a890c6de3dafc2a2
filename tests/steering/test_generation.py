"""steer_ui.steering.generation: batched steered generation, streaming, stopping, cleanup."""

from __future__ import annotations

import threading
import time

import pytest
import torch

from conftest import make_tiny
from steer_ui.concepts.vectors import ConceptVector
from steer_ui.errors import IntensityError, SteerError, VectorError
from steer_ui.steering.generation import Sampling, generate, stream
from steer_ui.steering.hooks import hooks_left


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_thread_module):
    yield


PROMPT = "i am very happy and the day is good"
INTENSITIES = [0.0, 0.5, -0.5, 1.0]


@pytest.fixture
def vec(tiny):
    g = torch.Generator().manual_seed(1)
    return ConceptVector(directions=torch.randn(tiny.n_layers, tiny.hidden_size, generator=g),
                         model=tiny.name, default_layer=1)


def _no_eos(lm):
    # A random tiny model may pick EOS at any step; these tests need full-length runs.
    lm.model.generation_config.eos_token_id = None


class _Slow:
    """Counts the model's forward passes and slows each down, so the worker cannot race
    far ahead of the consumer (a stop must then land within a few tokens)."""

    def __init__(self, lm, seconds=0.01):
        self.calls = 0
        self.seconds = seconds
        self.handle = lm.model.register_forward_pre_hook(self._hook)

    def _hook(self, module, args):
        self.calls += 1
        time.sleep(self.seconds)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.remove()


def _lock_free(lm) -> bool:
    ok = lm.lock.acquire(blocking=False)
    if ok:
        lm.lock.release()
    return ok


def _alive_workers() -> int:
    """Rows still in some model's batch (0 once every generation has returned)."""
    from steer_ui.steering.scheduler import live

    return sum(len(s.rows) for s in live())


def test_batched_equals_alone(tiny, vec):
    _no_eos(tiny)
    s = Sampling(max_new_tokens=10)
    together = generate(tiny, PROMPT, vec, INTENSITIES, layers=1, sampling=s, chat=False)
    assert len(together) == 4
    alone = [generate(tiny, PROMPT, vec, [x], layers=1, sampling=s, chat=False)[0] for x in INTENSITIES]
    assert together == alone
    assert len(set(together)) > 1  # steering did change something
    assert all(len(t.split()) >= 5 for t in together)
    assert hooks_left(tiny) == 0


def test_unsteered_row_equals_plain_generate(tiny, vec):
    _no_eos(tiny)
    s = Sampling(max_new_tokens=8)
    steered = generate(tiny, PROMPT, vec, [0.0, 2.0], layers=1, sampling=s, chat=False)
    batch = tiny.tokenizer(PROMPT, return_tensors="pt")
    with torch.no_grad():
        out = tiny.model.generate(**batch, max_new_tokens=8, do_sample=False,
                                  pad_token_id=tiny.tokenizer.pad_token_id)
    plain = tiny.tokenizer.decode(out[0, batch["input_ids"].shape[1]:], skip_special_tokens=True)
    assert steered[0] == plain
    unsteered = generate(tiny, PROMPT, None, [0.0], sampling=s, chat=False)
    assert unsteered[0] == plain


def test_stream_yields_growing_texts(tiny, vec):
    _no_eos(tiny)
    steps = list(stream(tiny, PROMPT, vec, [0.0, 1.0], layers=1, sampling=Sampling(max_new_tokens=6),
                        chat=False))
    assert len(steps) == 6  # one yield per generated token
    for prev, cur in zip(steps, steps[1:]):
        assert len(cur) == 2
        for a, b in zip(prev, cur):
            assert b.startswith(a)
    assert sum(len(t) for t in steps[-1]) > sum(len(t) for t in steps[0])
    assert hooks_left(tiny) == 0 and _lock_free(tiny)


def test_stop_event_ends_early(tiny, vec):
    _no_eos(tiny)
    stop = threading.Event()
    steps = []
    with _Slow(tiny) as slow:
        for texts in stream(tiny, PROMPT, vec, [0.0, 1.0], layers=1, sampling=Sampling(max_new_tokens=100),
                            stop=stop, chat=False):
            steps.append(texts)
            if len(steps) == 2:
                stop.set()
    assert 2 <= len(steps) < 20  # the worker may be a token or two ahead, never 98
    assert slow.calls < 20
    assert hooks_left(tiny) == 0 and _lock_free(tiny)
    assert _alive_workers() == 0


def test_closing_generator_early(tiny, vec):
    _no_eos(tiny)
    with _Slow(tiny) as slow:
        gen = stream(tiny, PROMPT, vec, [0.0, 1.0], layers=[0, 2], sampling=Sampling(max_new_tokens=100),
                     chat=False)
        first = next(gen)
        assert len(first) == 2
        gen.close()
        calls = slow.calls
    assert calls < 20  # the worker stopped instead of running on to 100 tokens
    assert hooks_left(tiny) == 0
    assert _lock_free(tiny)
    assert _alive_workers() == 0


def test_break_out_of_loop(tiny, vec):
    _no_eos(tiny)
    n = 0
    with _Slow(tiny) as slow:
        for _ in stream(tiny, PROMPT, vec, [1.0], layers=1, sampling=Sampling(max_new_tokens=100),
                        chat=False):
            n += 1
            if n == 3:
                break
        calls = slow.calls
    assert calls < 20
    assert hooks_left(tiny) == 0
    assert _lock_free(tiny)
    assert _alive_workers() == 0
    # The model still works normally afterwards.
    assert len(generate(tiny, PROMPT, vec, [0.0, 1.0], layers=1, sampling=Sampling(max_new_tokens=3),
                        chat=False)) == 2


def test_sampling_is_reproducible_per_row_and_ignores_the_global_rng(tiny, vec):
    _no_eos(tiny)
    s = Sampling(max_new_tokens=12, temperature=1.5, seed=7)
    torch.manual_seed(1)
    a = generate(tiny, PROMPT, vec, [0.0, 0.5, 0.5], layers=1, sampling=s, chat=False)
    torch.manual_seed(2)  # the process-wide RNG must not matter
    b = generate(tiny, PROMPT, vec, [0.0, 0.5, 0.5], layers=1, sampling=s, chat=False)
    assert a == b
    others = [generate(tiny, PROMPT, vec, [0.0, 0.5, 0.5], layers=1, chat=False,
                       sampling=Sampling(max_new_tokens=12, temperature=1.5, seed=seed))
              for seed in (8, 9)]
    assert all(o[0] != a[0] for o in others), (a, others)  # the seed decides
    # A row is what it would be alone: same settings and seed give the same text ...
    assert a[1] == a[2]
    solo = generate(tiny, PROMPT, vec, [0.5], layers=1, sampling=s, chat=False)
    assert solo == [a[1]]
    # ... and sampling really samples: greedy gives another text
    assert generate(tiny, PROMPT, vec, [0.5], layers=1, sampling=Sampling(12), chat=False) != solo


def test_two_threads_sampling_at_once_stay_reproducible(tiny, vec):
    _no_eos(tiny)
    s = Sampling(max_new_tokens=10, temperature=1.2, seed=3)
    alone = generate(tiny, PROMPT, vec, [0.3], layers=1, sampling=s, chat=False)
    results = []

    def run():
        for _ in range(3):
            results.append(generate(tiny, PROMPT, vec, [0.3], layers=1, sampling=s, chat=False))
            torch.manual_seed(len(results))  # another user re-seeding the global RNG

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [alone] * 6


def test_sampling_settings_are_checked():
    Sampling().check()
    Sampling(temperature=0.7, top_p=0.9).check()
    for bad, pattern in ((Sampling(temperature=float("nan")), "temperature"),
                         (Sampling(temperature=-1), "temperature"), (Sampling(top_p=0), "top-p")):
        with pytest.raises(SteerError, match=pattern):
            bad.check()


@pytest.mark.parametrize("bad", [0, -1, 4097])
def test_invalid_max_new_tokens(tiny, bad):
    with pytest.raises(SteerError, match=f"max new tokens must be 1..4096, not {bad}"):
        Sampling(max_new_tokens=bad).check()
    with pytest.raises(SteerError, match="max new tokens"):
        generate(tiny, PROMPT, None, [0.0], sampling=Sampling(max_new_tokens=bad))
    assert _lock_free(tiny) and _alive_workers() == 0


def test_bad_intensity_raised_before_work(tiny, vec, monkeypatch):
    """The intensities are checked in the caller's thread before anything is queued: no
    request reaches the scheduler, no forward pass runs."""
    from steer_ui.steering import scheduler

    submitted = []
    real_submit = scheduler.Scheduler.submit

    def submit(self, *args, **kwargs):
        submitted.append(args[0])
        return real_submit(self, *args, **kwargs)

    monkeypatch.setattr(scheduler.Scheduler, "submit", submit)
    with _Slow(tiny, seconds=0) as slow:
        with pytest.raises(IntensityError, match="not finite"):
            next(stream(tiny, PROMPT, vec, [0.0, float("nan")]))
        assert (submitted, slow.calls) == ([], 0)
        # the spies do see work: a valid request is queued and runs the model
        rows = stream(tiny, PROMPT, vec, [0.0, 1.0], sampling=Sampling(max_new_tokens=1))
        next(rows)
        rows.close()
        assert submitted == [tiny.chat(PROMPT)] and slow.calls >= 1

def test_worker_errors_reach_the_caller(tiny):
    wrong = ConceptVector(directions=torch.randn(3, 16), model="other", default_layer=1)
    with pytest.raises(VectorError, match="other"):
        generate(tiny, PROMPT, wrong, [1.0], sampling=Sampling(max_new_tokens=2))
    assert hooks_left(tiny) == 0 and _lock_free(tiny) and _alive_workers() == 0


def test_chat_prompt_used(tiny, vec, monkeypatch):
    from steer_ui.steering import scheduler

    seen = []
    real_submit = scheduler.Scheduler.submit

    def submit(self, text, rows, *args, **kwargs):
        seen.append((text, len(rows)))
        return real_submit(self, text, rows, *args, **kwargs)

    monkeypatch.setattr(scheduler.Scheduler, "submit", submit)
    generate(tiny, "hello", vec, [0.0, 1.0], sampling=Sampling(max_new_tokens=1))
    assert seen == [(tiny.chat("hello"), 2)]

def test_a_shared_stop_is_not_set_when_one_generation_ends(tiny, vec):
    """The Steer tab's Both mode: two generations share the user's Stop. The one that
    ends first must not end the other (the LLM's panes were cut short that way)."""
    _no_eos(tiny)
    other = make_tiny("qwen2", seed=1)
    _no_eos(other)
    stop = threading.Event()
    short = generate(tiny, PROMPT, vec, [0.0], layers=1, sampling=Sampling(max_new_tokens=2), stop=stop)
    assert not stop.is_set()
    stats = []
    long = generate(other, PROMPT, None, [0.0], sampling=Sampling(max_new_tokens=12), stop=stop, stats=stats)
    assert stats[0].tokens == [12] and len(short) == 1
    alone = generate(other, PROMPT, None, [0.0], sampling=Sampling(max_new_tokens=12))
    assert long == alone


def test_the_users_stop_still_ends_a_generation(tiny, vec):
    _no_eos(tiny)
    stop = threading.Event()
    rows = []
    for texts in stream(tiny, PROMPT, vec, [0.0], layers=1, sampling=Sampling(max_new_tokens=100), stop=stop):
        rows.append(texts)
        if len(rows) == 3:
            stop.set()
    assert 3 <= len(rows) <= 5


def test_stats_count_tokens_up_to_the_end_of_text(tiny, vec):
    _no_eos(tiny)
    stats = []
    generate(tiny, PROMPT, vec, [0.0, 1.0], layers=1, sampling=Sampling(max_new_tokens=6), stats=stats)
    assert stats[0].tokens == [6, 6] and stats[0].seconds > 0
    assert stats[0].tokens_per_second == 6 / stats[0].seconds
    # a row that ends early counts its own tokens, without its end-of-text token
    from steer_ui.steering.generation import _stats
    from steer_ui.steering.scheduler import Ticket

    ticket = Ticket(2, (threading.Event(),))
    ticket.tokens = [[5, 6, tiny.tokenizer.eos_token_id], [5, 6, 7, 8]]
    assert _stats(tiny, ticket).tokens == [2, 4]


def test_a_generation_that_must_wait_for_the_model_says_so(tiny, vec):
    """Another generation holds the model: the waiting one reports it at once, then runs."""
    held, release = threading.Event(), threading.Event()

    def busy():
        with tiny.lock:
            held.set()
            release.wait(10)

    other = threading.Thread(target=busy)
    other.start()
    held.wait(10)
    waits = []
    gen = stream(tiny, PROMPT, vec, [0.0, 1.0], layers=1, sampling=Sampling(max_new_tokens=3),
                 on_wait=lambda: waits.append(time.monotonic()))
    first = next(gen)
    assert waits and first == ["", ""]  # told before any token, while the model is busy
    release.set()
    rows = list(gen)
    other.join()
    assert rows and all(t for t in rows[-1]) and len(waits) == 1
    # alone (model free) there is no wait notice
    waits.clear()
    list(stream(tiny, PROMPT, vec, [0.0], layers=1, sampling=Sampling(max_new_tokens=2), on_wait=lambda: waits.append(1)))
    assert waits == []
