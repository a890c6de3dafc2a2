"""steer-ui app: load the LLM/SLM pair and serve the app on 127.0.0.1."""

from __future__ import annotations

import argparse
import logging
import os
import sys

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported

from steer_ui.config import settings  # noqa: E402
from steer_ui.errors import SteerError  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    from steer_ui.app.flags import model_flags

    s = settings()
    p = argparse.ArgumentParser(description="steer-ui: steer language models with concept vectors.",
                                parents=[model_flags()])
    p.add_argument("--llm", default=s.llm, help=f"larger model: bundled name, Hub id, folder or .gguf (default {s.llm})")
    p.add_argument("--slm", default=s.slm, help=f"smaller model (default {s.slm})")
    p.add_argument("--host", default=s.host, help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=s.port)
    p.add_argument("--expose", action="store_true", help="allow binding a non-loopback --host")
    return p.parse_args(argv)


def check_host(host: str, expose: bool) -> None:
    """Refuse to serve beyond this machine unless ``--expose`` says so."""
    if host not in ("127.0.0.1", "localhost", "::1") and not expose:
        raise SteerError(f"--host {host} would serve the app to other machines; add --expose if you mean it.")
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(f"WARNING: serving on {host}: anyone who can reach it can run the models.", file=sys.stderr)


def main(argv=None) -> int:
    args = parse_args(argv)
    # One line per user error (bad list, bad file) in the terminal; tracebacks only for real bugs.
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("steer_ui").setLevel(logging.INFO)
    from steer_ui.app.flags import spec_kwargs
    from steer_ui.app.pool import ModelPool
    from steer_ui.app.ui import build

    try:
        check_host(args.host, args.expose)
        wb = ModelPool(**spec_kwargs(args))
        for role, source in (("llm", args.llm), ("slm", args.slm)):
            print(f"loading {role.upper()} {source} ...", flush=True)
            wb.load(role, source, progress=lambda f, m: print(f"  {m}", flush=True))
    except SteerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    demo = build(wb)
    demo.queue(default_concurrency_limit=8)
    demo.launch(server_name=args.host, server_port=args.port, share=False, inbrowser=False,
                max_file_size=f"{settings().max_upload_mb}mb")  # the same cap as every file reader
    return 0


if __name__ == "__main__":
    sys.exit(main())
