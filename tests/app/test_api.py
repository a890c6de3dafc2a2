"""The OpenAI-compatible API, driven by the official ``openai`` client against the server
running on a free loopback port, with the real SmolLM2-135M (fp32: exact comparisons)."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from conftest import real_model
from steer_ui.app.api import ApiConfig
from steer_ui.app.pool import ModelPool
from steer_ui.app.published import VectorStore
from steer_ui.app.server import make_app, running
from steer_ui.concepts.contrast import from_preset
from steer_ui.concepts.extraction import extract_concept
from steer_ui.concepts.files import save_vector
from steer_ui.steering.generation import Sampling, generate
from steer_ui.steering.hooks import hooks_left

pytestmark = pytest.mark.real
openai = pytest.importorskip("openai")

SMOL = "smollm2-135m"
HELLO = [{"role": "user", "content": "Tell me about your weekend."}]
KEY = "test-key-123"


@pytest.fixture(scope="module")
def server():
    """(base url, the model, the published happy-sad vector) of an API-only server with a key."""
    lm = real_model(SMOL, "float32")
    pool = ModelPool()
    pool.put("slm", lm)
    store = VectorStore()
    vector = extract_concept(lm, from_preset("happy-sad", 8)).vector
    store.publish("happy-sad", vector)
    with running(make_app(pool, store, ApiConfig(api_key=KEY, max_tokens_cap=64), ui=False)) as url:
        yield url, lm, vector


@pytest.fixture
def client(server):
    return openai.OpenAI(base_url=server[0] + "/v1", api_key=KEY, max_retries=0, timeout=120)


def _library(lm, vector, x, layer, tokens):
    """What the library's own generate writes for these settings (the oracle)."""
    text = lm.chat_messages(HELLO)
    return generate(lm, text, vector, [x], [layer] if layer is not None else None, Sampling(tokens), chat=False)[0]


def test_models_are_listed_by_short_name(client):
    models = {m.id: m for m in client.models.list()}
    assert SMOL in models and models[SMOL].owned_by == "steer-ui"


def test_chat_unsteered_and_steered_equal_the_library(client, server):
    _, lm, vector = server
    plain = client.chat.completions.create(model=SMOL, messages=HELLO, max_tokens=24, temperature=0)
    assert plain.choices[0].message.content == _library(lm, None, 0.0, None, 24)
    assert plain.usage.completion_tokens <= 24 and plain.usage.prompt_tokens > 10
    steered = client.chat.completions.create(
        model=SMOL, messages=HELLO, max_tokens=24, temperature=0,
        extra_body={"steering": [{"vector": "happy-sad", "intensity": 0.6, "layers": [15]}]})
    text = steered.choices[0].message.content
    assert text != plain.choices[0].message.content
    assert text == _library(lm, vector, 0.6, 15, 24)
    assert hooks_left(lm) == 0


def test_streaming_gives_the_same_text_in_openai_chunks(client, server):
    _, lm, vector = server
    chunks = list(client.chat.completions.create(
        model=SMOL, messages=HELLO, max_tokens=20, temperature=0, stream=True,
        extra_body={"steering": [{"vector": "happy-sad", "intensity": 0.6, "layers": [15]}]}))
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == _library(lm, vector, 0.6, 15, 20)
    assert chunks[-1].choices[0].finish_reason in ("stop", "length") and len(chunks) > 5


def test_completions_without_a_chat_template(client, server):
    _, lm, _ = server
    out = client.completions.create(model=SMOL, prompt="The capital of France is", max_tokens=8, temperature=0)
    assert out.choices[0].text == generate(lm, "The capital of France is", None, [0.0], None, Sampling(8),
                                           chat=False)[0]
    streamed = "".join(c.choices[0].text for c in client.completions.create(
        model=SMOL, prompt="The capital of France is", max_tokens=8, temperature=0, stream=True))
    assert streamed == out.choices[0].text


def test_composition_adds_entries(client, server):
    _, lm, vector = server
    one = client.chat.completions.create(model=SMOL, messages=HELLO, max_tokens=16, temperature=0, extra_body={
        "steering": [{"vector": "happy-sad", "intensity": 0.8, "layers": [15], "mode": "raw"}]})
    two = client.chat.completions.create(model=SMOL, messages=HELLO, max_tokens=16, temperature=0, extra_body={
        "steering": [{"vector": "happy-sad", "intensity": 0.5, "layers": [15], "mode": "raw"},
                     {"vector": "happy-sad", "intensity": 0.3, "layers": [15], "mode": "raw"}]})
    assert one.choices[0].message.content == two.choices[0].message.content


def test_a_seeded_sample_is_reproducible(client):
    kw = dict(model=SMOL, messages=HELLO, max_tokens=16, temperature=1.0, seed=11)
    a, b = (client.chat.completions.create(**kw).choices[0].message.content for _ in range(2))
    c = client.chat.completions.create(**{**kw, "seed": 12}).choices[0].message.content
    assert a == b and a != c


def test_vectors_upload_list_use_delete(client, server, tmp_path):
    url, lm, vector = server
    path = save_vector(vector, tmp_path / "mine.safetensors", lm.family)
    auth = {"Authorization": f"Bearer {KEY}"}
    with open(path, "rb") as f:
        r = httpx.post(url + "/v1/vectors", headers=auth, data={"name": "mine"},
                       files={"file": ("mine.safetensors", f, "application/octet-stream")}, timeout=60)
    assert r.status_code == 200, r.text
    assert r.json()["model"] == SMOL and r.json()["n_layers"] == 30
    names = [v["name"] for v in httpx.get(url + "/v1/vectors", headers=auth).json()["data"]]
    assert {"happy-sad", "mine"} <= set(names)
    out = client.chat.completions.create(model=SMOL, messages=HELLO, max_tokens=12, temperature=0,
                                         extra_body={"steering": [{"vector": "mine", "intensity": 0.6, "layers": [15]}]})
    assert out.choices[0].message.content == _library(lm, vector, 0.6, 15, 12)
    assert httpx.delete(url + "/v1/vectors/mine", headers=auth).json()["deleted"] is True
    assert httpx.delete(url + "/v1/vectors/mine", headers=auth).status_code == 404


BAD = {
    "unknown vector": (dict(extra_body={"steering": [{"vector": "nope", "intensity": 0.4}]}), openai.NotFoundError,
                       "No published vector 'nope'"),
    "unknown model": (dict(model="no-such-model"), openai.NotFoundError, "Model 'no-such-model' is not loaded"),
    "huge intensity": (dict(extra_body={"steering": [{"vector": "happy-sad", "intensity": 1e9}]}),
                       openai.BadRequestError, "beyond"),
    "layer out of range": (dict(extra_body={"steering": [{"vector": "happy-sad", "intensity": 0.4, "layers": [99]}]}),
                           openai.BadRequestError, "out of range"),
    "empty messages": (dict(messages=[]), openai.BadRequestError, "messages is empty"),
    "max_tokens beyond the cap": (dict(max_tokens=100000), openai.BadRequestError, "allows 1 to 64"),
    "bad mode": (dict(extra_body={"steering": [{"vector": "happy-sad", "intensity": 0.4, "mode": "turbo"}]}),
                 openai.BadRequestError, "Unknown intensity mode"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_an_openai_error_with_a_clear_message(client, case):
    extra, error, message = BAD[case]
    kw = {"model": SMOL, "messages": HELLO, "max_tokens": 4, "temperature": 0, **extra}
    with pytest.raises(error) as info:
        client.chat.completions.create(**kw)
    body = info.value.body
    assert message in body["message"], body
    assert body["type"] in ("invalid_request_error", "not_found_error")


def test_a_nan_intensity_is_refused(server):
    """The openai client cannot even send NaN; a hand-written body can (JSON extension)."""
    body = ('{"model": "%s", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4, '
            '"steering": [{"vector": "happy-sad", "intensity": NaN}]}' % SMOL)
    r = httpx.post(server[0] + "/v1/chat/completions", content=body,
                   headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"})
    assert r.status_code == 400 and "not finite" in r.json()["error"]["message"], r.text


def test_a_vector_for_another_model_is_refused(client, server, tmp_path):
    import torch

    from steer_ui.concepts.vectors import ConceptVector

    url = server[0]
    foreign = save_vector(ConceptVector(torch.randn(24, 896), "qwen2.5-0.5b", name="other", default_layer=12),
                          tmp_path / "other.safetensors")
    with open(foreign, "rb") as f:
        r = httpx.post(url + "/v1/vectors", headers={"Authorization": f"Bearer {KEY}"}, data={"name": "other"},
                       files={"file": ("other.safetensors", f)}, timeout=60)
    assert r.status_code == 200
    with pytest.raises(openai.BadRequestError, match="was made for qwen2.5-0.5b"):
        client.chat.completions.create(model=SMOL, messages=HELLO, max_tokens=4,
                                       extra_body={"steering": [{"vector": "other", "intensity": 0.4}]})


def test_the_key_is_required_and_the_body_capped(server):
    url = server[0]
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        r = httpx.post(url + "/v1/chat/completions", headers=headers, json={"model": SMOL, "messages": HELLO})
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=url + "/v1", api_key="wrong", max_retries=0).models.list()
    big = {"model": SMOL, "messages": [{"role": "user", "content": "x" * (3 * 2**20)}]}
    r = httpx.post(url + "/v1/chat/completions", headers={"Authorization": f"Bearer {KEY}"}, json=big)
    assert r.status_code == 413 and "more than" in r.json()["error"]["message"]


def test_a_client_that_disconnects_stops_its_row_only(client, server):
    _, lm, _ = server
    other = {}

    def long_request():
        other["text"] = client.chat.completions.create(model=SMOL, messages=HELLO, max_tokens=60,
                                                       temperature=0).choices[0].message.content

    thread = threading.Thread(target=long_request)
    thread.start()
    stream = client.chat.completions.create(model=SMOL, messages=[{"role": "user", "content": "Count to 100."}],
                                            max_tokens=64, temperature=0, stream=True)
    for i, _ in enumerate(stream):
        if i == 3:
            break
    stream.close()  # the client goes away mid-stream
    thread.join(120)
    assert other["text"] == _library(lm, None, 0.0, None, 60)  # the other request ran to its end
    deadline = time.monotonic() + 30
    while lm.scheduler.rows and time.monotonic() < deadline:
        time.sleep(0.1)
    assert lm.scheduler.rows == [] and hooks_left(lm) == 0


def test_an_upload_that_is_not_a_vector_file_is_refused(server, tmp_path):
    (tmp_path / "x.txt").write_text("hello")
    with open(tmp_path / "x.txt", "rb") as f:
        r = httpx.post(server[0] + "/v1/vectors", headers={"Authorization": f"Bearer {KEY}"}, data={"name": "x"},
                       files={"file": ("x.txt", f)}, timeout=60)
    assert r.status_code == 400 and "send a .safetensors (steer-ui) or .gguf" in r.json()["error"]["message"], r.text
    assert "x" not in [v["name"] for v in httpx.get(server[0] + "/v1/vectors",
                                                    headers={"Authorization": f"Bearer {KEY}"}).json()["data"]]


OTHER_CASES = ["vector for another model", "NaN intensity", "oversized body", "missing API key", "wrong API key",
               "client disconnects mid-stream", "upload that is not a vector file", "delete of an unknown vector"]


def test_every_api_case_is_in_the_reliability_doc():
    """docs/RELIABILITY.md's API table has a row for each case tested here (and no other)."""
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "RELIABILITY.md").read_text()
    table = doc[doc.index("## The API: bad input"):].split("\n## ")[0]
    rows = [line.split("|")[1].strip() for line in table.splitlines() if line.startswith("| ")][1:]
    assert sorted(rows) == sorted([*BAD, *OTHER_CASES])
