"""Security defaults: loopback only, no outbound network at start, no pickle loads."""

import re
import socket
import urllib.request
from pathlib import Path

import pytest

import app
from steer_ui.errors import SteerError
from steer_ui.models import ModelSpec

ROOT = Path(__file__).resolve().parents[1]


def test_defaults_bind_loopback_without_share_or_remote_code():
    args = app.parse_args([])
    assert args.host == "127.0.0.1" and args.expose is False and args.trust_remote_code is False
    assert ModelSpec("smollm2-135m").trust_remote_code is False
    with pytest.raises(SteerError, match="--expose"):
        app.check_host("0.0.0.0", expose=False)
    app.check_host("0.0.0.0", expose=True)  # allowed, with a warning on stderr


def test_source_has_no_pickle_loads_and_no_share_links():
    for path in list((ROOT / "steer_ui").glob("*.py")) + [ROOT / "app.py"]:
        text = path.read_text()
        assert "import pickle" not in text and "allow_pickle=True" not in text, path
        for call in re.findall(r"torch\.load\([^)]*\)", text):
            assert "weights_only=True" in call, (path, call)
        assert "share=True" not in text, path
    assert "share=False" in (ROOT / "app.py").read_text()


@pytest.mark.real
def test_no_outbound_network_when_the_app_starts(monkeypatch, smollm):
    attempts = []
    real_getaddrinfo, real_connect = socket.getaddrinfo, socket.socket.connect

    def getaddrinfo(host, *a, **k):
        if host not in ("127.0.0.1", "localhost", "::1", None):
            attempts.append(("dns", host))
        return real_getaddrinfo(host, *a, **k)

    def connect(self, address):
        host = address[0] if isinstance(address, tuple) else "unix"
        if host not in ("127.0.0.1", "localhost", "::1", "unix"):
            attempts.append(("connect", host))
            raise OSError("blocked by test")
        return real_connect(self, address)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)
    from steer_ui.ui import build
    from steer_ui.workbench import Workbench

    wb = Workbench()
    wb.models["slm"] = smollm
    demo = build(wb)
    demo.queue()
    _, url, _ = demo.launch(server_name="127.0.0.1", server_port=None, prevent_thread_lock=True,
                            share=False, max_file_size="20mb")
    try:
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url, timeout=30) as r:
            assert r.status == 200
    finally:
        demo.close()
    assert attempts == []
