"""``python -m steer_ui generate`` (steer_ui.app.cli_generate): --vector specs, composed
vectors, --system and --raw; the real runs on SmolLM2."""

from __future__ import annotations

import argparse
import re

import pytest

from conftest import run_cli as _run
import torch

from steer_ui.app.cli_generate import VectorSpec, generate_args, parse_vector_spec, vector_specs
from steer_ui.concepts.files import save_vector
from steer_ui.concepts.vectors import ConceptVector
from steer_ui.errors import IntensityError, LayerError, SteerError
from steer_ui.models import zoo

SMOL = "smollm2-135m"



def _args(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    generate_args(p)
    return p.parse_args(["--model", SMOL, "--prompt", "Hi.", *argv])


@pytest.mark.parametrize("text,spec", [
    ("v.safetensors", VectorSpec("v.safetensors")),
    ("v.safetensors:0.4", VectorSpec("v.safetensors", 0.4)),
    ("v.safetensors:-0.2@10-12", VectorSpec("v.safetensors", -0.2, [10, 11, 12])),
    ("v.safetensors@8,12", VectorSpec("v.safetensors", None, [8, 12])),
    ("C:\\vectors\\v.safetensors", VectorSpec("C:\\vectors\\v.safetensors")),  # a drive, not an intensity
    ("me@host/v.safetensors:1", VectorSpec("me@host/v.safetensors", 1.0)),  # an @ in a folder name
])
def test_vector_specs_parse(text, spec):
    assert parse_vector_spec(text) == spec


def test_bad_vector_specs_say_what_to_write():
    with pytest.raises(IntensityError, match=r"--vector 'v.safetensors:abc': intensity 'abc' is not a number"):
        parse_vector_spec("v.safetensors:abc")
    with pytest.raises(SteerError, match="names no file"):
        parse_vector_spec(":0.4")
    with pytest.raises(LayerError, match="runs backwards"):
        parse_vector_spec("v.safetensors:0.4@14-10")


def test_a_bare_vector_takes_intensity_and_each_spec_its_own():
    specs = vector_specs(_args("--vector", "a.safetensors", "--vector", "b.safetensors:-0.2", "--intensity", "0.5"))
    assert [(s.path, s.intensity) for s in specs] == [("a.safetensors", 0.5), ("b.safetensors", -0.2)]
    specs = vector_specs(_args("--vector", "a.safetensors:1", "--vector", "b.safetensors:1@3", "--layer", "8,9"))
    assert [s.layers for s in specs] == [[8, 9], [3]]  # --layer for those without @LAYERS
    with pytest.raises(SteerError, match="has no intensity: give --intensity, or write a.safetensors:0.4"):
        vector_specs(_args("--vector", "a.safetensors"))
    with pytest.raises(SteerError, match="--system needs the chat template, which --raw leaves out"):
        vector_specs(_args("--vector", "a.safetensors:1", "--raw", "--system", "Be brief."))


def test_a_bad_spec_fails_before_any_model_loads():
    rc, out, err = _run(["generate", "--model", "nope", "--vector", "v.safetensors:abc", "--prompt", "Hi."])
    assert rc == 2 and out == "" and "intensity 'abc' is not a number" in err, err  # not "Unknown model"
    rc, out, err = _run(["generate", "--model", "nope", "--vector", "v.safetensors:1", "--layer", "x", "--prompt", "Hi."])
    assert rc == 2 and "--layer 'x' is not a layer, a range like 10-14" in err, err


@pytest.fixture(scope="module")
def two_vectors(tmp_path_factory):
    """Two random vectors for SmolLM2 (30 layers x 576), as files."""
    if not zoo.is_installed(zoo.get(SMOL)):
        pytest.skip(f"{SMOL} is not installed")
    folder = tmp_path_factory.mktemp("compose")
    g = torch.Generator().manual_seed(0)
    return [save_vector(ConceptVector(torch.randn(30, 576, generator=g), SMOL, name=n, default_layer=15),
                        folder / f"{n}.safetensors") for n in ("a", "b")]


def _sections(out: str) -> tuple[str, str, str]:
    m = re.fullmatch(r"--- unsteered ---\n(.*)\n--- steered \((.*?)\) ---\n(.*)\n--- engine: .*---\n", out, re.S)
    assert m, out
    return m.groups()


@pytest.mark.real
def test_generate_composes_vectors_raw_and_with_a_system_prompt(two_vectors):
    a, b = two_vectors
    base = ["generate", "--model", SMOL, "--engine", "torch", "--vector", f"{a}:0.4", "--vector", f"{b}:-0.2@10-14",
            "--prompt", "The weather today is", "--max-new-tokens", "8"]
    rc, out, err = _run([*base, "--raw"])
    assert rc == 0, err
    plain_raw, label, steered = _sections(out)
    assert label == "a, layer 15, intensity 0.4 relative + b, layers 10-14, intensity -0.2 relative; " \
                    "raw completion, no chat template"
    assert steered != plain_raw
    rc, out, err = _run([*base, "--system", "You are a pirate."])
    assert rc == 0, err
    plain_chat, label, _ = _sections(out)
    assert label.endswith("intensity -0.2 relative; system prompt 'You are a pirate.'")
    assert plain_chat != plain_raw  # the chat template (and its system prompt) reached the model
