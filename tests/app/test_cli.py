"""The command line, run in-process (``steer_ui.cli.main``) on the real SmolLM2, and
``app.py``'s own flags. Errors must exit with status 2 and one readable stderr line."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import run_cli as _run
from steer_ui.app import cli
from steer_ui.concepts.files import load_vector, save_vector
from steer_ui.concepts.vectors import ConceptVector
from steer_ui.errors import SteerError
from steer_ui.models import zoo

ROOT = Path(__file__).resolve().parents[2]
SMOL = "smollm2-135m"



def _needs(name: str) -> None:
    if not zoo.is_installed(zoo.get(name)):
        pytest.skip(f"{name} is not installed")


@pytest.fixture(scope="module")
def extracted(tmp_path_factory):
    """One ``extract`` run (8 happy/sad pairs on SmolLM2): (rc, stdout, stderr, path)."""
    _needs(SMOL)
    path = tmp_path_factory.mktemp("cli") / "tmp" / "v.safetensors"
    rc, out, err = _run(["extract", "--model", SMOL, "--pairs", "happy-sad", "--limit", "8",
                         "--out", str(path)])
    return rc, out, err, path


# ---------- models ----------

def test_models_lists_bundled_names_with_installed_state(capsys):
    assert cli.main(["models"]) == 0
    out = capsys.readouterr().out
    lines = out.strip().splitlines()
    assert len(lines) == len(zoo.BUNDLED) == 4
    for name, line in zip(zoo.BUNDLED, lines):
        assert line.split()[0] == name
        assert "cached:" in line
        if zoo.is_installed(zoo.get(name)):
            assert re.search(r"\binstalled\b", line) and "missing" not in line, line
        else:
            assert "missing" in line and zoo.get(name).install_command() in line, line
    # conftest-loaded models are installed on any machine that runs the real tests
    if zoo.is_installed(zoo.get(SMOL)):
        assert re.search(rf"^{re.escape(SMOL)}\s.*\binstalled\b", out, re.M)


# ---------- extract and generate ----------

@pytest.mark.real
def test_extract_writes_the_vector_and_prints_its_default_layer(extracted):
    rc, out, err, path = extracted
    assert rc == 0, err
    assert path.is_file()
    v = load_vector(path, 30, 576)
    assert v.model == SMOL and v.name == "happy-sad" and v.method == "mean-diff"
    assert v.provenance.get("pairs") == 8
    assert 0 <= v.default_layer < 30
    m = re.search(r"default layer (\d+) \(AUC ([0-9.]+)\)", out)
    assert m, out
    assert int(m.group(1)) == v.default_layer
    assert math.isclose(float(m.group(2)), v.separability[v.default_layer], abs_tol=5e-4)
    assert "from 8 pairs" in out
    assert f"wrote {path}" in out


@pytest.mark.real
def test_generate_prints_unsteered_and_steered_sections_that_differ(extracted, capsys):
    _, _, _, path = extracted
    v = load_vector(path)
    rc = cli.main(["generate", "--model", SMOL, "--vector", str(path), "--intensity", "0.6",
                   "--prompt", "Tell me about your day.", "--max-new-tokens", "16"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    m = re.fullmatch(r"--- unsteered ---\n(.*)\n--- steered \((.*?)\) ---\n(.*)\n--- engine: torch; torch ---\n",
                     captured.out, re.S)
    assert m, captured.out
    plain, label, steered = m.groups()
    assert plain.strip() and steered.strip()
    assert steered != plain
    assert label == f"happy-sad, layer {v.default_layer}, intensity 0.6 relative"


# ---------- bad input: exit 2, one clear line on stderr ----------

@pytest.fixture(scope="module")
def foreign_vector(tmp_path_factory):
    """A vector made for a model with another hidden size (100, not SmolLM2's 576)."""
    v = ConceptVector(directions=torch.randn(30, 100), model="other-model", name="foreign", default_layer=10)
    return save_vector(v, tmp_path_factory.mktemp("foreign") / "foreign.safetensors")


def _generate_args(vector, *extra):
    return ["generate", "--model", SMOL, "--vector", str(vector), "--prompt", "Hi.",
            "--max-new-tokens", "4", *extra]


BAD = {
    "unknown model": (lambda p, f: ["extract", "--model", "nope", "--pairs", "happy-sad", "--limit", "2",
                                    "--out", str(p.parent / "x.safetensors")],
                      ["Unknown bundled model 'nope'", "smollm2-135m", "qwen2.5-0.5b", "qwen2.5-1.5b",
                       "gemma3-270m"]),
    "unknown preset": (lambda p, f: ["extract", "--model", SMOL, "--pairs", "happy-sadd", "--out",
                                     str(p.parent / "x.safetensors")],
                       ["'happy-sadd'", "neither a preset", "happy-sad"]),
    "layer 999": (lambda p, f: _generate_args(p, "--intensity", "0.5", "--layer", "999"),
                  ["999", "out of range", "0..29"]),
    "intensity nan": (lambda p, f: _generate_args(p, "--intensity", "nan"), ["not finite"]),
    "other hidden size": (lambda p, f: _generate_args(f, "--intensity", "0.5"),
                          ["foreign.safetensors", "hidden size 100", "576"]),
    "missing vector": (lambda p, f: _generate_args(p.parent / "absent.safetensors", "--intensity", "0.5"),
                       ["absent.safetensors", "does not exist"]),
}


@pytest.mark.real
@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_exits_2_with_a_clear_message(case, extracted, foreign_vector):
    _, _, _, path = extracted
    make_argv, expected = BAD[case]
    rc, out, err = _run(make_argv(path, foreign_vector))
    assert rc == 2, (out, err)
    assert out == ""
    # transformers may draw a "Loading weights" progress bar first; the error is one line, last
    errors = [line for line in err.strip().splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and err.strip().splitlines()[-1] == errors[0], err
    assert "Traceback" not in err
    for fragment in expected:
        assert fragment in err, (fragment, err)
    assert not (path.parent / "x.safetensors").exists()


# ---------- app.py ----------

def test_app_help_lists_its_flags():
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    proc = subprocess.run([sys.executable, "app.py", "--help"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    for flag in ("--llm", "--slm", "--device", "--dtype", "--host", "--port"):
        assert re.search(rf"(^|\s){re.escape(flag)}\b", proc.stdout), (flag, proc.stdout)
    assert "127.0.0.1" in proc.stdout  # the default host is loopback


def _app_module():
    spec = importlib.util.spec_from_file_location("steer_ui_app_under_test", ROOT / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_app_refuses_a_public_host_without_expose(capsys):
    app = _app_module()
    with pytest.raises(SteerError, match="--expose"):
        app.check_host("0.0.0.0", expose=False)
    for host in ("127.0.0.1", "localhost", "::1"):
        app.check_host(host, expose=False)  # loopback is always fine
    assert capsys.readouterr().err == ""
    with pytest.raises(SteerError, match="--api-key"):
        app.check_host("0.0.0.0", expose=True)
    app.check_host("0.0.0.0", expose=True, api_key="secret")  # allowed when asked, with a warning
    assert "WARNING" in capsys.readouterr().err


# ---------- transfer, experiment, export, import ----------

QWEN = "qwen2.5-0.5b"


@pytest.fixture(scope="module")
def llm_vector(tmp_path_factory):
    """happy-sad (8 pairs) extracted in qwen2.5-0.5b by the CLI."""
    _needs(QWEN)
    path = tmp_path_factory.mktemp("cli-llm") / "happy-llm.safetensors"
    rc, out, err = _run(["extract", "--model", QWEN, "--pairs", "happy-sad", "--limit", "8", "--out", str(path)])
    assert rc == 0, err
    return path


@pytest.mark.real
def test_transfer_writes_an_slm_vector_and_prints_the_diagnostics(llm_vector, tmp_path):
    _needs(SMOL)
    out = tmp_path / "happy-slm.safetensors"
    rc, stdout, err = _run(["transfer", "--vector", str(llm_vector), "--to", SMOL, "--map", "procrustes",
                            "--sources", "concept", "--out", str(out)])
    assert rc == 0, err
    v = load_vector(out, 30, 576)
    assert v.model == SMOL and v.method == "transfer:procrustes"
    assert v.provenance["transferred_from"] == QWEN and v.provenance["map"] == "procrustes"
    assert f"transferred 'happy-sad': {QWEN} -> {SMOL} with procrustes" in stdout
    report = json.loads(stdout[stdout.index("{"): stdout.rindex("}") + 1])
    # the printed diagnostics, recomputed here: the native SLM vector of the same prompts ...
    from conftest import real_model
    from steer_ui.concepts.contrast import from_preset
    from steer_ui.concepts.extraction import extract_concept

    native = extract_concept(real_model(SMOL), from_preset("happy-sad", 8)).vector
    j = report["slm_layer"]
    assert j == native.default_layer  # the verdict is about where the native concept is best
    cos = float(torch.nn.functional.cosine_similarity(v.directions[j], native.directions[j], dim=0))
    assert report["cos_native"] == pytest.approx(cos, abs=1e-3)
    arrived = report["cos_native"] > report["chance_mapped_p95"] and report["cos_native"] > 0
    assert report["verdict"].startswith("arrived") == arrived, report


@pytest.mark.real
def test_experiment_reports_every_arm_at_its_own_layer(tmp_path):
    _needs(SMOL), _needs(QWEN)
    out = tmp_path / "run"
    rc, stdout, err = _run(["experiment", "--llm", QWEN, "--slm", SMOL, "--pairs", "happy-sad", "--limit-pairs", "8",
                            "--data", str(ROOT / "tests/fixtures/ab_small.json"), "--maps", "ridge",
                            "--sources", "concept", "--intensities", "0,0.5", "--fluency-texts", "4",
                            "--out", str(out)])
    assert rc == 0, err
    report = json.loads((out / "report.json").read_text())
    assert set(report["arms"]) == {"baseline", "native", "transferred:ridge", "random"}
    layers = report["layers"]
    # the transferred arm steers where its map carried the LLM's best layer, not at the native's
    assert layers["transferred:ridge"] == report["transfer"]["transferred:ridge"]["vector_layer"]
    assert layers["random"] == layers["native"]
    for name in report["arms"]:
        assert report["arms"][name]["layer"] == layers[name]
        assert re.search(rf"^{re.escape(name)}\s+intensity", stdout, re.M), stdout
    assert report["n_test"] >= 4 and "wrote" in stdout


@pytest.mark.real
def test_export_then_import_keeps_the_layer(extracted, tmp_path):
    _, _, _, path = extracted
    v = load_vector(path)
    gguf = tmp_path / "v.gguf"
    rc, out, err = _run(["export", "--vector", str(path), "--gguf", str(gguf), "--layer", "15"])
    assert rc == 0, err
    assert "layers 15 x 576" in out and "direction.N is our layer N" in out
    back_path = tmp_path / "back.safetensors"
    rc, out, err = _run(["import", "--gguf", str(gguf), "--model", SMOL, "--out", str(back_path)])
    assert rc == 0, err
    assert "layers 15, default layer 15" in out
    back = load_vector(back_path, 30, 576)
    assert torch.equal(back.directions[15], v.directions[15])
    assert back.directions[[i for i in range(30) if i != 15]].abs().sum() == 0
    # all layers: layer 0 is left out, and the user is told
    rc, out, err = _run(["export", "--vector", str(path), "--gguf", str(tmp_path / "all.gguf")])
    assert rc == 0 and "layers 1..29 (29 layers)" in out and "layer 0 is left out" in out, (out, err)
    rc, out, err = _run(["export", "--vector", str(path), "--gguf", str(tmp_path / "z.gguf"), "--layer", "0"])
    assert rc == 2 and "layer 0" in err and not (tmp_path / "z.gguf").exists()


@pytest.mark.real
def test_extract_mean_pooling_on_pairs_that_differ_only_at_the_end(tmp_path):
    """Each pair has its own opening and the two sides differ only in the last word:
    a mean that fell back to the first token after the prefix found nothing here."""
    _needs(SMOL)
    openings = ["Write about the sea", "Tell me about dinner", "Describe the city at night",
                "Say something about winter", "Talk about your job", "Write about a long trip"]
    pairs = tmp_path / "ending.json"
    pairs.write_text(json.dumps({"positive": [f"{o}, joyfully." for o in openings],
                                 "negative": [f"{o}, gloomily." for o in openings]}))
    out = tmp_path / "v.safetensors"
    rc, stdout, err = _run(["extract", "--model", SMOL, "--pairs", str(pairs), "--position", "mean",
                            "--out", str(out)])
    assert rc == 0, err
    v = load_vector(out)
    assert v.provenance["position"] == "mean" and v.directions.abs().sum() > 0
    assert max(v.separability) > 0.8, v.separability


@pytest.mark.real
def test_pairs_accepts_an_edited_copy_of_a_preset(tmp_path):
    _needs(SMOL)
    preset = json.loads((ROOT / "assets/presets/happy-sad.json").read_text())
    preset.update(name="cheerful-grumpy", positive_persona="a cheerful person", negative_persona="a grumpy person")
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(preset))
    out = tmp_path / "v.safetensors"
    rc, stdout, err = _run(["extract", "--model", SMOL, "--pairs", str(path), "--limit", "6", "--out", str(out)])
    assert rc == 0, err
    v = load_vector(out)
    assert v.name == "cheerful-grumpy" and v.provenance["source"] == f"preset:{path}"
    assert "from 6 pairs" in stdout


def test_parse_scalings():
    assert cli.parse_scalings("dev-sweep") == ["dev-sweep"]
    assert cli.parse_scalings(" dev-sweep, adaptive ,per-example") == ["dev-sweep", "adaptive", "per-example"]
    for bad in ("", "oracle", "dev-sweep,dev-sweep", "dev-sweep,,oracle"):
        with pytest.raises(SteerError, match="--scaling"):
            cli.parse_scalings(bad)


@pytest.mark.real
def test_experiment_with_several_scalings_writes_a_folder_per_mode(tmp_path):
    """One run, every mode: a report per mode, each read from the same arms; the
    adaptive mode gets its own grid."""
    _needs(SMOL)
    out = tmp_path / "run"
    rc, stdout, err = _run(["experiment", "--llm", SMOL, "--slm", SMOL, "--pairs", "dev", "--limit-pairs", "4",
                            "--data", str(ROOT / "tests/fixtures/ab_small.json"), "--maps", "",
                            "--intensities", "0,0.5", "--adaptive-intensities", "0,0.1", "--fluency-texts", "2",
                            "--scaling", "dev-sweep,per-example,adaptive", "--out", str(out)])
    assert rc == 0, err
    reports = {s: json.loads((out / s / "report.json").read_text()) for s in ("dev-sweep", "per-example", "adaptive")}
    assert {r["scaling"] for r in reports.values()} == set(reports)
    assert reports["adaptive"]["intensities"] == [0.0, 0.1] and reports["dev-sweep"]["intensities"] == [0.0, 0.5]
    # the same test passes: per-example picks, per item, among dev-sweep's curve points
    assert reports["per-example"]["arms"]["native"]["curve"] == reports["dev-sweep"]["arms"]["native"]["curve"]
    assert reports["adaptive"]["arms"]["baseline"]["test"] == reports["dev-sweep"]["arms"]["baseline"]["test"]
    assert stdout.count("-- scaling") == 3


def test_experiment_generation_refuses_other_scaling_modes():
    """Generation has one way to choose an intensity; other modes are refused, not ignored."""
    rc, _, err = _run(["experiment", "--llm", SMOL, "--slm", SMOL, "--pairs", "happy-sad", "--task", "generation",
                       "--data", "x.txt", "--scaling", "dev-sweep,adaptive", "--out", "unused"])
    assert rc == 2 and "dev-sweep" in err and "--task ab" in err
