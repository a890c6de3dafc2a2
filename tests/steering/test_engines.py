"""steer_ui.steering.engines: llama.cpp (through llama-cpp-python) generating beside the
torch engine from the same bundled GGUF, with the same vectors and the same meaning.

The two engines compute differently (llama.cpp's Q4_1 kernels, our dequantized fp32
weights), so their texts are compared by agreement on the first tokens and by where a
strong vector moves the concept score, not by identity."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from conftest import make_tiny, real_model, shared_prefix
from steer_ui.concepts.contrast import from_preset
from steer_ui.concepts.extraction import extract_concept
from steer_ui.errors import EngineError
from steer_ui.evaluation.textscore import scorer_for
from steer_ui.models.loading import ModelSpec, load_model
from steer_ui.steering import engines
from steer_ui.steering.engines import llamacpp
from steer_ui.steering.generation import Sampling, generate, rows_for
from steer_ui.steering.scheduler import Scheduler

SMOL = "smollm2-135m"
PROMPTS = ["Tell me about your weekend.", "Describe a walk in the park.", "What do you think of Mondays?",
           "Write a note to a friend.", "Talk about your favourite meal.", "Describe your morning."]


@pytest.fixture(scope="module")
def pair():
    """(llama.cpp model, torch model, happy-sad vector): the same bundled weights, fp32 on torch."""
    torch_lm = real_model(SMOL, "float32")
    try:
        llamacpp.binding()
    except EngineError as exc:
        pytest.skip(str(exc))
    fast = load_model(ModelSpec(SMOL, device="cpu", dtype="float32", engine="llamacpp"))
    assert engines.engine_of(fast) == "llamacpp", fast.engine_note
    return fast, torch_lm, extract_concept(torch_lm, from_preset("happy-sad", 8)).vector


@pytest.mark.real
@pytest.mark.parametrize("x", [0.0, 0.4])
def test_the_engines_agree_on_the_first_tokens_for_most_prompts(pair, x):
    fast, slow, v = pair
    shared = [shared_prefix(slow, generate(fast, p, v, [x], [15], Sampling(16))[0],
                      generate(slow, p, v, [x], [15], Sampling(16))[0]) for p in PROMPTS]
    agree = sum(n >= 8 for n in shared)
    print(f"\nintensity {x}: leading tokens shared per prompt {shared}; {agree}/{len(PROMPTS)} share >= 8 of 16")
    assert agree >= len(PROMPTS) // 2, shared


@pytest.mark.real
def test_a_strong_vector_moves_the_concept_score_the_same_way_on_both(pair):
    fast, slow, v = pair
    score = scorer_for("happy-sad").score
    shift = {}
    for name, lm in (("llamacpp", fast), ("torch", slow)):
        up = score([generate(lm, p, v, [1.0], [15], Sampling(24))[0] for p in PROMPTS[:4]])
        down = score([generate(lm, p, v, [-1.0], [15], Sampling(24))[0] for p in PROMPTS[:4]])
        shift[name] = float(np.mean(up) - np.mean(down))
    print(f"\nhappy-sad score, +1.0 minus -1.0 at layer 15: {shift}")
    assert shift["llamacpp"] > 0.2 and shift["torch"] > 0.2, shift
    assert abs(shift["llamacpp"] - shift["torch"]) < 0.5, shift


@pytest.mark.real
def test_rows_of_many_users_are_what_they_are_alone_and_stop_alone(pair):
    """On llama.cpp too: concurrent requests (own vector and intensity each) give their solo
    text, and one stopped request ends only itself."""
    fast, _, v = pair
    jobs = [(PROMPTS[i], v, [0.0, 0.3 * (i + 1)]) for i in range(3)]
    alone = [generate(fast, p, vec, xs, [15], Sampling(12)) for p, vec, xs in jobs]
    results, stop = {}, threading.Event()

    def client(i):
        p, vec, xs = jobs[i]
        results[i] = generate(fast, p, vec, xs, [15], Sampling(12))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(3)]
    stopped = threading.Thread(target=lambda: generate(fast, PROMPTS[4], v, [0.5], [15], Sampling(200), stop=stop))
    stopped.start()
    for t in threads:
        t.start()
    stop.set()
    for t in [*threads, stopped]:
        t.join(120)
    assert [results[i] for i in range(3)] == alone
    sched = fast.llama_scheduler
    assert sched.rows == [] and all(c.busy == 0 for c in sched.engine.contexts.values())


@pytest.mark.real
def test_what_llama_cpp_cannot_do_runs_on_torch(pair):
    fast, _, v = pair
    llama = fast.llama_scheduler
    assert engines.scheduler_for(fast, rows_for(v, [0.5], [15])) is llama
    assert isinstance(engines.scheduler_for(fast, rows_for(v, [0.5], [15], "adaptive")), Scheduler)
    assert engines.scheduler_for(fast, rows_for(v, [0.5], [15]), "generated") is not llama
    assert engines.scheduler_for(fast, rows_for(v, [0.5], [0])) is not llama  # llama.cpp never steers layer 0
    text = generate(fast, PROMPTS[0], v, [0.5], [15], Sampling(8), mode="adaptive")[0]
    assert text  # served, by torch


def test_a_model_without_a_gguf_falls_back_to_torch_saying_why(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    lm = make_tiny("llama")
    lm.spec, lm.engine = ModelSpec(str(tmp_path), device="cpu", engine="llamacpp"), None
    assert engines.engine_of(lm) == "torch"
    assert "is not a GGUF model" in lm.engine_note and "torch engine generates" in lm.engine_note
    assert "torch (llama.cpp engine off" in engines.describe(lm)
    lm.spec, lm.engine = ModelSpec(str(tmp_path), device="cpu", engine="auto"), None
    assert engines.engine_of(lm) == "torch" and lm.engine_note == ""  # auto: nothing to say


def test_auto_and_torch_choices(monkeypatch):
    tiny = make_tiny("llama")
    tiny.spec = ModelSpec("smollm2-135m", device="cpu", engine="torch")
    assert engines.engine_of(tiny) == "torch" and tiny.engine_note == ""

    def missing():
        raise EngineError("The llama.cpp engine needs llama-cpp-python (ImportError: no module).")

    monkeypatch.setattr(llamacpp, "binding", missing)
    for choice in ("auto", "llamacpp"):
        tiny.spec, tiny.engine = ModelSpec("smollm2-135m", device="cpu", engine=choice), None
        monkeypatch.setattr(engines, "gguf_path", lambda lm: Path(__file__))
        assert engines.engine_of(tiny) == "torch"
        assert "llama-cpp-python" in tiny.engine_note and "torch engine generates" in tiny.engine_note
    tiny.spec, tiny.engine = ModelSpec("smollm2-135m", device="cpu", engine="turbo"), None
    with pytest.raises(EngineError, match="Unknown engine 'turbo'"):
        engines.engine_of(tiny)


@pytest.mark.real
def test_the_cli_generates_on_the_engine_asked_for(pair, tmp_path, capsys):
    from steer_ui.app import cli
    from steer_ui.concepts.files import save_vector

    _, _, v = pair
    path = save_vector(v, tmp_path / "v.safetensors", "llama")
    args = ["generate", "--model", SMOL, "--vector", str(path), "--intensity", "0.6", "--layer", "15",
            "--prompt", "Tell me about your weekend.", "--max-new-tokens", "12"]
    assert cli.main([*args, "--engine", "llamacpp"]) == 0
    out = capsys.readouterr().out
    assert "--- engine: llama.cpp; llama.cpp, " in out, out
    plain, steered = out.split("--- unsteered ---\n")[1].split("\n--- steered")
    assert plain.strip() and plain.strip() not in steered
    assert cli.main([*args, "--engine", "llamacpp", "--mode", "adaptive"]) == 0
    assert "--- engine: torch (fallback)" in capsys.readouterr().out


@pytest.mark.real
def test_a_full_llama_cpp_cache_fails_that_request_only(pair):
    from steer_ui.errors import ResourceError

    fast, _, v = pair
    with pytest.raises(ResourceError, match="2048-token cache is full"):
        generate(fast, "word " * 2100, v, [0.4], [15], Sampling(4))
    assert generate(fast, PROMPTS[0], v, [0.4], [15], Sampling(4))[0]  # the engine still serves
    assert all(c.busy == 0 for c in fast.llama_scheduler.engine.contexts.values())


@pytest.mark.real
def test_the_api_steers_on_the_llama_cpp_engine(pair):
    """The official openai client against a server whose model generates on llama.cpp:
    per-request steering, streamed or not, equal to the library's generate on that engine."""
    openai = pytest.importorskip("openai")
    from steer_ui.app.api import ApiConfig
    from steer_ui.app.pool import ModelPool
    from steer_ui.app.published import VectorStore
    from steer_ui.app.server import make_app, running

    fast, _, v = pair
    pool, store = ModelPool(), VectorStore()
    pool.put("slm", fast)
    store.publish("happy-sad", v)
    messages = [{"role": "user", "content": PROMPTS[0]}]
    expected = generate(fast, fast.chat_messages(messages), v, [0.5], [15], Sampling(16), chat=False)[0]
    with running(make_app(pool, store, ApiConfig(), ui=False)) as url:
        client = openai.OpenAI(base_url=url + "/v1", api_key="-", max_retries=0, timeout=120)
        steering = {"steering": [{"vector": "happy-sad", "intensity": 0.5, "layers": [15]}]}
        whole = client.chat.completions.create(model=SMOL, messages=messages, max_tokens=16, temperature=0,
                                               extra_body=steering).choices[0].message.content
        parts = [c.choices[0].delta.content or "" for c in client.chat.completions.create(
            model=SMOL, messages=messages, max_tokens=16, temperature=0, stream=True, extra_body=steering)]
        listed = {m.id: m for m in client.models.list().data}
    assert whole == expected == "".join(parts)
    assert listed[SMOL].model_extra["engine"] == "llamacpp"


@pytest.mark.real
def test_llama_cpp_can_be_turned_off_and_on_again(pair):
    """The Models tab's engine switch: off frees llama.cpp (torch generates, the same text
    as the torch engine), refused while rows are running; on again serves as before."""
    from steer_ui.app.actions.models import set_engine
    from steer_ui.app.pool import Pair

    fast, slow, v = pair
    before = generate(fast, PROMPTS[0], v, [0.4], [15], Sampling(8))
    busy = fast.llama_scheduler.submit(fast.chat(PROMPTS[1]), [()], Sampling(400))
    while not busy.tokens[0]:
        pass
    with pytest.raises(EngineError, match="still generating 1 row"):
        engines.switch(fast, "torch")
    busy.stops[0].set()
    while busy.events.get()[0] != "done":
        pass
    assert "now generates with torch" in set_engine(Pair({"slm": fast}), "slm", "torch")
    assert engines.engine_of(fast) == "torch" and fast.llama_scheduler is None
    assert "turned off" in engines.describe(fast)
    assert generate(fast, PROMPTS[0], v, [0.4], [15], Sampling(8)) == generate(slow, PROMPTS[0], v, [0.4], [15],
                                                                                  Sampling(8))
    assert "llama.cpp, GGUF" in engines.switch(fast, "llamacpp")
    assert generate(fast, PROMPTS[0], v, [0.4], [15], Sampling(8)) == before
