"""steer-ui app: load the LLM/SLM pair and serve the UI and the OpenAI-compatible API on 127.0.0.1.

    python app.py [--llm M] [--slm M] [--host H] [--port P] [--expose --api-key K] ...
    (the same as ``python -m steer_ui serve``; ``make run`` runs it)
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported

from steer_ui.app.server import check_host  # noqa: E402, F401 (the security tests read it here)


def parse_args(argv=None) -> argparse.Namespace:
    from steer_ui.app.flags import model_flags, server_flags

    p = argparse.ArgumentParser(description="steer-ui: steer language models with concept vectors (UI + API).",
                                parents=[server_flags(), model_flags()])
    return p.parse_args(argv)


def main(argv=None) -> int:
    from steer_ui.app.server import serve_from_args

    return serve_from_args(parse_args(argv), ui=True)


if __name__ == "__main__":
    sys.exit(main())
