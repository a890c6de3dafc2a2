"""Security defaults: loopback only, no outbound network at start, no pickle loads."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import app
from conftest import free_port
from steer_ui.errors import SteerError
from steer_ui.models.loading import ModelSpec

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_bind_loopback_without_share_or_remote_code():
    args = app.parse_args([])
    assert args.host == "127.0.0.1" and args.expose is False and args.trust_remote_code is False
    assert ModelSpec("smollm2-135m").trust_remote_code is False
    with pytest.raises(SteerError, match="--expose"):
        app.check_host("0.0.0.0", expose=False)
    with pytest.raises(SteerError, match="give it a key"):
        app.check_host("0.0.0.0", expose=True)  # exposed, the API needs a key
    app.check_host("0.0.0.0", expose=True, api_key="k")  # allowed, with a warning on stderr
    assert args.api_key is None or args.api_key == os.environ.get("STEER_UI_API_KEY")


def test_source_has_no_pickle_loads_and_no_share_links():
    for path in list((ROOT / "steer_ui").rglob("*.py")) + [ROOT / "app.py"]:
        text = path.read_text()
        assert "import pickle" not in text and "allow_pickle=True" not in text, path
        for call in re.findall(r"torch\.load\([^)]*\)", text):
            assert "weights_only=True" in call, (path, call)
        assert "share=True" not in text and ".launch(" not in text, path  # no Gradio tunnel: uvicorn serves
    assert "uvicorn.run(app, host=host" in (ROOT / "steer_ui/app/server.py").read_text()


# A child process with a clean environment (no HF_HUB_OFFLINE, TRANSFORMERS_OFFLINE or
# GRADIO_ANALYTICS_ENABLED: huggingface_hub reads its offline flag once, at import, so only
# a fresh process shows what a user's shell gets). Its first act is to record every DNS
# lookup and connection that is not loopback, and refuse it; then it runs WHAT.
CHILD = """
import json, os, socket, sys, threading, time, urllib.request
attempts = []
real_getaddrinfo, real_connect = socket.getaddrinfo, socket.socket.connect
LOOPBACK = ("127.0.0.1", "localhost", "::1", None)

def getaddrinfo(host, *a, **k):
    if host not in LOOPBACK:
        attempts.append(["dns", str(host)])
        raise OSError("blocked by test")
    return real_getaddrinfo(host, *a, **k)

def connect(self, address):
    host = address[0] if isinstance(address, tuple) else None
    if host not in LOOPBACK:
        attempts.append(["connect", str(host)])
        raise OSError("blocked by test")
    return real_connect(self, address)

socket.getaddrinfo, socket.socket.connect = getaddrinfo, connect
sys.path.insert(0, os.getcwd())
WHAT
print("ATTEMPTS " + json.dumps(attempts), flush=True)
os._exit(0)
"""

START_APP = """
import app
port = int(os.environ["PORT"])
threading.Thread(target=app.main, args=(["--llm", "smollm2-135m", "--slm", "smollm2-135m", "--port", str(port)],),
                 daemon=True).start()
deadline = time.time() + 240
while time.time() < deadline:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
            assert r.status == 200
            break
    except OSError:
        time.sleep(0.5)
else:
    raise SystemExit("the app did not come up")
print("ANALYTICS " + str(os.environ.get("GRADIO_ANALYTICS_ENABLED")), flush=True)
"""


def _child(what: str) -> tuple[list, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "GRADIO_ANALYTICS_ENABLED")}
    env["PORT"] = str(free_port())
    proc = subprocess.run([sys.executable, "-c", CHILD.replace("WHAT", what)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=400)
    lines = proc.stdout.splitlines()
    found = [line for line in lines if line.startswith("ATTEMPTS ")]
    assert proc.returncode == 0 and found, proc.stdout[-2000:] + proc.stderr[-4000:]
    return json.loads(found[0].removeprefix("ATTEMPTS ")), proc.stdout


def test_the_network_recorder_sees_an_outside_request():
    """The harness's positive control: a request to the outside is recorded (and refused)."""
    attempts, _ = _child("""
try:
    urllib.request.urlopen("http://example.com/", timeout=5)
except OSError:
    pass
""")
    assert ["dns", "example.com"] in attempts


@pytest.mark.real
def test_no_outbound_network_when_the_app_loads_its_models_and_starts():
    from steer_ui.models import zoo

    if not zoo.is_installed(zoo.get("smollm2-135m")):
        pytest.skip("smollm2-135m is not installed")
    attempts, out = _child(START_APP)
    assert attempts == []
    assert "ANALYTICS False" in out  # the app turns Gradio's analytics off by itself
