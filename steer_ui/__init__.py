"""steer-ui: extract, transfer and apply concept (steering) vectors.

Wings that follow the data, each importing only from the ones before it:
``models`` (zoo, loading, layers, chat, tokens) -> ``concepts`` (contrast sets,
recording, vectors, extraction, vector files) -> ``steering`` (hooks, generation) ->
``transfer`` (paired activations, maps, diagnostics) -> ``evaluation`` (scoring,
experiments, fluency, text scores, reports) -> ``app`` (the shared models, sessions,
tab actions, the Gradio UI, the CLI). Only ``app.ui`` and ``app.tabs`` import gradio.

The names most scripts need are importable from here (loaded on first use, so that
``python -m steer_ui models`` starts without importing torch)::

    from steer_ui import load_model, ModelSpec, from_preset, extract_concept, generate, steer
"""

from importlib import import_module

__version__ = "0.2.0"

_PUBLIC = {
    "ModelSpec": "models.loading", "LoadedModel": "models.loading", "load_model": "models.loading",
    "ContrastSet": "concepts.contrast", "from_lists": "concepts.contrast", "from_preset": "concepts.contrast",
    "from_source": "concepts.contrast", "ConceptVector": "concepts.vectors", "extract": "concepts.vectors",
    "random_like": "concepts.vectors", "extract_concept": "concepts.extraction", "record": "concepts.recording",
    "typical_norms": "concepts.recording", "save_vector": "concepts.files", "load_vector": "concepts.files",
    "export_gguf": "concepts.files", "import_gguf": "concepts.files", "steer": "steering.hooks",
    "Sampling": "steering.generation", "generate": "steering.generation", "stream": "steering.generation",
    "SteerError": "errors",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name in _PUBLIC:
        return getattr(import_module(f".{_PUBLIC[name]}", __name__), name)
    raise AttributeError(f"module 'steer_ui' has no attribute {name!r}")
