"""The app wing: the shared model pool, each user's session state, the actions behind
every tab (gradio-free, so they are tested without a browser), the Gradio layout and
wiring (``ui`` and ``tabs``: the only gradio imports) and the command line."""
