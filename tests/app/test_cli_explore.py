"""``python -m steer_ui lens`` and ``calibrate`` on the bundled SmolLM2."""

from __future__ import annotations

import re

import pytest

from conftest import run_cli as _run

from steer_ui.app.cli_explore import parse_layer_list, read_prompts
from steer_ui.errors import ContrastError, LayerError, SteerError

SMOL = "smollm2-135m"



def test_layer_lists():
    assert parse_layer_list("15", 30) == [15]
    assert parse_layer_list("10-12", 30) == [10, 11, 12]
    assert parse_layer_list("3-27:6", 30) == [3, 9, 15, 21, 27]
    assert parse_layer_list("8,12, 4", 30) == [4, 8, 12]
    with pytest.raises(SteerError, match="every k-th"):
        parse_layer_list("a-b", 30)
    with pytest.raises(LayerError, match="0..29"):
        parse_layer_list("40", 30)


def test_prompts_file(tmp_path):
    assert len(read_prompts(None, 5)) == 5
    f = tmp_path / "p.txt"
    f.write_text("one\n\n two \n")
    assert read_prompts(str(f), 5) == ["one", "two"]
    with pytest.raises(ContrastError, match="Cannot read prompts"):
        read_prompts(str(tmp_path / "absent.txt"), 5)


@pytest.fixture(scope="module")
def vector(tmp_path_factory):
    from steer_ui.models import zoo

    if not zoo.is_installed(zoo.get(SMOL)):
        pytest.skip(f"{SMOL} is not installed")
    path = tmp_path_factory.mktemp("explore") / "hs.safetensors"
    rc, _, err = _run(["extract", "--model", SMOL, "--pairs", "happy-sad", "--limit", "8", "--out", str(path)])
    assert rc == 0, err
    return path


@pytest.mark.real
def test_lens_prints_promoted_and_suppressed_tokens_per_layer(vector):
    rc, out, err = _run(["lens", "--model", SMOL, "--vector", str(vector), "--layer", "20,25", "--top", "4"])
    assert rc == 0, err
    assert re.findall(r"^layer (\d+)  promotes:", out, re.M) == ["20", "25"]
    assert out.count("suppresses:") == 2
    assert len(re.findall(r"'[^']*' \+\d", out.splitlines()[0])) == 4  # four promoted, each with its logit


@pytest.mark.real
def test_calibrate_prints_the_grid_and_the_chosen_cell(vector):
    rc, out, err = _run(["calibrate", "--model", SMOL, "--vector", str(vector), "--layers", "9-21:12",
                         "--intensities", "0.2,0.5", "--n-prompts", "2", "--max-new-tokens", "8"])
    assert rc == 0, err
    assert re.search(r"^\s+9 .*\n\s+21 ", out, re.M), out
    assert "happy-sad sentiment score" in out and "score score" not in out
    last = out.strip().splitlines()[-1]
    assert re.fullmatch(r"chosen: layer (9|21) intensity (0\.2|0\.5)|chosen: none", last), out


@pytest.mark.real
def test_calibrate_refuses_a_grid_over_the_cap(vector):
    rc, out, err = _run(["calibrate", "--model", SMOL, "--vector", str(vector), "--layers", "0-29",
                         "--intensities", "0.1,0.2,0.3"])
    assert rc == 2 and "90 cells, more than the cap of 64" in err, err
