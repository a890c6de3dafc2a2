"""steer_ui.steering.scheduler: requests from many users in one running batch, each row
exactly what it would be alone (fp32), joining between decode steps, leaving when done."""

from __future__ import annotations

import threading
import time

import pytest
import torch

from conftest import make_tiny
from steer_ui.concepts.vectors import ConceptVector
from steer_ui.steering.hooks import Push, hooks_left
from steer_ui.steering.scheduler import Sampling, Scheduler

PROMPTS = ["i am very happy and the day is good", "the night", "you are not sad and i am", "w1 w2 w3"]


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_thread_module):
    yield


def _vec(lm, seed):
    g = torch.Generator().manual_seed(seed)
    return ConceptVector(torch.randn(lm.n_layers, lm.hidden_size, generator=g), lm.name, default_layer=1)


def _run(sched: Scheduler, text: str, rows, sampling=Sampling(12), positions="all", stop=None):
    """Submit and wait: the final tokens of each row."""
    ticket = sched.submit(text, rows, sampling, positions, (stop,) if stop else ())
    while (event := ticket.events.get())[0] not in ("done", "error"):
        pass
    if event[0] == "error":
        raise event[1]
    return ticket.tokens


def _no_eos(lm):
    lm.model.generation_config.eos_token_id = None
    lm.tokenizer.eos_token = None


def _jobs(lm):
    """Four requests with their own prompt, rows, vectors, intensities, layers and modes."""
    a, b = _vec(lm, 1), _vec(lm, 2)
    return [
        (PROMPTS[0], [(), (Push(a, 1.0, (1,)),)], Sampling(12), "all"),
        (PROMPTS[1], [(Push(b, -0.5, (0, 2), "raw"),)], Sampling(7), "generated"),
        (PROMPTS[2], [(Push(a, 0.7, (2,), "adaptive"), Push(b, 0.3, (1,)))], Sampling(10, 1.2, 0.9, seed=5), "all"),
        (PROMPTS[3], [(), (Push(b, 2.0, (1,)),), (Push(a, -1.0, (0,)),)], Sampling(9), "all"),
    ]


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_every_request_is_what_it_would_be_alone(arch):
    """Four users at once (a barrier releases them together): each request's tokens,
    row for row, equal the same request run alone on an idle scheduler (fp32)."""
    lm = make_tiny(arch)
    _no_eos(lm)
    jobs = _jobs(lm)
    alone = [_run(Scheduler(lm), *job) for job in jobs]
    shared, results, barrier = Scheduler(lm), {}, threading.Barrier(len(jobs))

    def client(i):
        barrier.wait()
        results[i] = _run(shared, *jobs[i])

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert [results[i] for i in range(len(jobs))] == alone
    assert [len(r) for r in alone] == [2, 1, 1, 3] and [len(alone[1][0]), len(alone[3][2])] == [7, 9]
    assert alone[0][0] != alone[0][1] and alone[3][0] != alone[3][1]  # steering changed the text
    assert shared.steps < sum(job[2].max_new_tokens for job in jobs)  # they ran in one batch, not in turn
    assert hooks_left(lm) == 0 and shared.rows == []


@pytest.mark.parametrize("arch", ["llama", "gemma3"])
def test_requests_that_arrive_together_are_prefilled_together(arch):
    """Three prompts of different lengths inside one batch window: one padded prefill
    (full-attention caches), each request still exactly what it is alone. Sliding-window
    caches prefill one request at a time, and are exact too."""
    lm = make_tiny(arch)
    _no_eos(lm)
    jobs = [job for job in _jobs(lm) if job[3] == "all"]
    alone = [_run(Scheduler(lm), *job) for job in jobs]
    sched = Scheduler(lm, window_ms=300)
    tickets = [sched.submit(*job) for job in jobs]
    for t in tickets:
        while t.events.get()[0] != "done":
            pass
    assert [t.tokens for t in tickets] == alone
    assert sched.prefills == (1 if arch == "llama" else len(jobs))


def test_a_request_joins_a_running_batch_between_steps():
    lm = make_tiny("llama")
    _no_eos(lm)
    sched = Scheduler(lm)
    long = sched.submit(PROMPTS[0], [()], Sampling(60))
    while not long.tokens[0]:  # the long one is decoding
        time.sleep(0.001)
    late = _run(sched, PROMPTS[1], [(Push(_vec(lm, 3), 1.0, (1,)),)], Sampling(5))
    assert len(long.tokens[0]) < 60  # the late request finished while the long one still ran
    while long.events.get()[0] != "done":
        pass
    assert late == _run(Scheduler(lm), PROMPTS[1], [(Push(_vec(lm, 3), 1.0, (1,)),)], Sampling(5))
    assert long.tokens == _run(Scheduler(lm), PROMPTS[0], [()], Sampling(60))
    assert sched.rows == [] and sched.cache is None  # finished rows left the batch


def test_stopping_one_request_never_stops_another():
    lm = make_tiny("llama")
    _no_eos(lm)
    sched = Scheduler(lm)
    stop = threading.Event()
    doomed = sched.submit(PROMPTS[0], [(), ()], Sampling(200), stops=(stop,))
    kept = sched.submit(PROMPTS[2], [()], Sampling(30))
    while len(doomed.tokens[0]) < 3:
        time.sleep(0.001)
    stop.set()
    while doomed.events.get()[0] != "done":
        pass
    while kept.events.get()[0] != "done":
        pass
    assert 3 <= len(doomed.tokens[0]) < 200
    assert kept.tokens == _run(Scheduler(lm), PROMPTS[2], [()], Sampling(30))


def test_sampling_is_per_request_and_reproducible():
    lm = make_tiny("llama")
    _no_eos(lm)
    sched = Scheduler(lm)
    s7, s8 = Sampling(12, 1.3, 1.0, seed=7), Sampling(12, 1.3, 1.0, seed=8)
    torch.manual_seed(123)  # the process-wide RNG plays no part
    a = _run(sched, PROMPTS[0], [(), ()], s7)
    torch.manual_seed(456)
    assert _run(sched, PROMPTS[0], [(), ()], s7) == a
    assert a[0] == a[1]  # a row is what it would be alone: same seed, same text
    assert _run(sched, PROMPTS[0], [()], s8) != [a[0]]
    assert _run(sched, PROMPTS[0], [()], Sampling(12)) != [a[0]]  # and sampling really samples


def test_pushes_add_up():
    """Two raw pushes on one layer equal one push of their sum (composition)."""
    lm = make_tiny("llama")
    _no_eos(lm)
    a, b = _vec(lm, 1), _vec(lm, 2)
    both = _run(Scheduler(lm), PROMPTS[0], [(Push(a, 0.6, (1,), "raw"), Push(b, -0.4, (1,), "raw"))])
    summed = ConceptVector(0.6 * a.directions - 0.4 * b.directions, lm.name, default_layer=1)
    assert both == _run(Scheduler(lm), PROMPTS[0], [(Push(summed, 1.0, (1,), "raw"),)])
    assert both != _run(Scheduler(lm), PROMPTS[0], [(Push(a, 0.6, (1,), "raw"),)])


def test_sliding_window_models_run_one_batch_at_a_time():
    """Gemma 3's sliding-window cache layers cannot be padded together: the second request
    waits for the first batch to end (told so), and both are still exact."""
    lm = make_tiny("gemma3")
    _no_eos(lm)
    sched = Scheduler(lm)
    first = sched.submit(PROMPTS[0], [()], Sampling(20))
    while not first.tokens[0]:
        time.sleep(0.001)
    assert not sched.joins
    second = sched.submit(PROMPTS[1], [()], Sampling(5))
    events = []
    while (e := second.events.get())[0] != "done":
        events.append(e[0])
    assert events[0] == "waiting" and len(first.tokens[0]) == 20  # it started after the first ended
    assert second.tokens == _run(Scheduler(lm), PROMPTS[1], [()], Sampling(5))


def test_bad_requests_are_refused_before_they_are_queued():
    from steer_ui.errors import IntensityError, LayerError, SteerError, VectorError

    lm = make_tiny("llama")
    sched = Scheduler(lm)
    v = _vec(lm, 1)
    for rows, error in (([(Push(v, float("nan")),)], IntensityError), ([(Push(v, 1.0, (9,)),)], LayerError),
                        ([(Push(ConceptVector(torch.ones(3, 5), "other"), 1.0),)], VectorError),
                        ([(Push(v, 1.0, None, "turbo"),)], IntensityError), ([], IntensityError)):
        with pytest.raises(error):
            sched.submit(PROMPTS[0], rows)
    with pytest.raises(SteerError, match="max new tokens"):
        sched.submit(PROMPTS[0], [()], Sampling(0))
    assert sched.inbox.empty()
