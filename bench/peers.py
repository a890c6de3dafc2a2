"""The peer libraries' environment and a handle on the worker that runs them.

repeng 0.4.0 needs numpy < 2 and steering-vectors 0.12.2 needs transformers < 5, so
they cannot share our virtualenv. ``ensure()`` builds ``bench/.venv-peers`` (git-ignored)
once: torch==2.13.0 first (the CPU wheel on local disk), then the rest with torch
pinned by a constraints file, so pip can never swap in another torch. ``Peer`` starts
``bench/peer_worker.py`` in that venv and talks to it one JSON line at a time, so the
caller can alternate its own runs with the peer's: the worker is idle (blocked on its
stdin) while we run, and we are idle while it runs.

    python bench/peers.py        # build or check the venv, print its versions
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import common
from common import BENCH, log

VENV = BENCH / ".venv-peers"
TORCH = "torch==2.13.0"
REQUIREMENTS = ["transformers==4.57.*", "accelerate", "gguf", "numpy<2", "repeng==0.4.0",
                "steering-vectors==0.12.2"]
MARKER = VENV / ".bench-peers.json"


def python() -> Path:
    return VENV / "bin" / "python"


def _pip(*args: str) -> None:
    cmd = [str(python()), "-m", "pip", "install", "--disable-pip-version-check", "-q", *args]
    log("  $ " + " ".join(cmd))
    subprocess.run(cmd, check=True)


def ensure() -> dict:
    """Create/complete the peers venv; returns the installed versions."""
    wanted = {"torch": TORCH, "requirements": REQUIREMENTS}
    if MARKER.is_file() and json.loads(MARKER.read_text()).get("wanted") == wanted:
        return json.loads(MARKER.read_text())["versions"]
    log(f"building {VENV} (once; a few minutes)")
    if not python().exists():
        # The interpreter behind our own venv: same Python version, so the local cp311
        # torch wheel fits (`python3 -m venv` with that python3).
        base = getattr(sys, "_base_executable", None) or "python3"
        subprocess.run([base, "-m", "venv", str(VENV)], check=True)
    _pip(TORCH)
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write(TORCH + "\n")
        constraints = f.name
    try:
        _pip("-c", constraints, *REQUIREMENTS)
    finally:
        os.unlink(constraints)
    code = ("import json, importlib.metadata as m; print(json.dumps({p: m.version(p) for p in "
            "['torch', 'transformers', 'numpy', 'repeng', 'steering-vectors', 'gguf', 'accelerate', "
            "'scikit-learn']}))")
    versions = json.loads(subprocess.run([str(python()), "-c", code], check=True, capture_output=True,
                                         text=True).stdout)
    if versions["torch"].split("+")[0] != TORCH.split("==")[1]:
        raise RuntimeError(f"peers venv got torch {versions['torch']}, not {TORCH}")
    MARKER.write_text(json.dumps({"wanted": wanted, "versions": versions}, indent=2))
    return versions


class PeerError(RuntimeError):
    pass


class Peer:
    """The worker subprocess: ``call({"cmd": ...})`` -> its JSON answer."""

    def __init__(self, gguf: Path, prompts: dict, threads: int):
        self.dir = tempfile.mkdtemp(prefix="steer-bench-peer-")
        self.prompts = Path(self.dir) / "prompts.json"
        self.out = Path(self.dir) / "out.json"
        self.log_path = Path(self.dir) / "worker.log"
        self.prompts.write_text(json.dumps(prompts))
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        env.update(common.bench_env(threads))
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [str(python()), str(BENCH / "peer_worker.py"), "--gguf", str(gguf), "--prompts", str(self.prompts),
             "--out", str(self.out), "--threads", str(threads)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, text=True, env=env, cwd=self.dir)
        self.hello = self._read()  # after the model is loaded and warmed up

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            self._log.flush()
            raise PeerError("peer worker exited:\n" + self.log_path.read_text()[-4000:])
        msg = json.loads(line)
        if "error" in msg:
            raise PeerError("peer worker failed:\n" + msg["error"])
        return msg

    def call(self, **cmd) -> dict:
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def finish(self) -> dict:
        """Ask the worker to write its JSON file and exit; returns that file's content."""
        self.call(cmd="dump")
        return json.loads(self.out.read_text())

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
                self.proc.stdin.close()
                self.proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
        self._log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


if __name__ == "__main__":
    print(json.dumps(ensure(), indent=2))
