"""steer-ui: extract, transfer and apply concept (steering) vectors.

The core (everything but ``ui.py``) never imports gradio, so the same work runs from
Python, from ``python -m steer_ui`` and from the app.
"""

__version__ = "0.1.0"
