"""Finding a model's decoder layers: known attribute paths, or the one the user names."""

from __future__ import annotations

from torch import nn

from ..errors import ModelError

# Where decoder layers live in the architectures we know, tried in order.
LAYER_PATHS = (
    "model.layers",  # llama, mistral, qwen2, qwen3, phi3, gemma, gemma2
    "model.language_model.layers",  # gemma3 (multimodal wrapper)
    "language_model.model.layers",
    "transformer.h",  # gpt2, gpt-j, falcon
    "gpt_neox.layers",  # gpt-neox, pythia
    "model.decoder.layers",  # opt
)


def find_layers(model: nn.Module, path: str | None = None) -> nn.ModuleList:
    """The decoder layers (a ModuleList), found by known paths or ``path``."""
    for candidate in (path,) if path else LAYER_PATHS:
        obj = model
        try:
            for attr in candidate.split("."):
                obj = getattr(obj, attr)
        except AttributeError:
            continue
        if isinstance(obj, nn.ModuleList) and len(obj) > 0:
            return obj
    if path:
        raise ModelError(f"Layer path {path!r} does not lead to a non-empty ModuleList in this model.")
    raise ModelError(
        f"Could not find the decoder layers of this {type(model).__name__}. Tried "
        f"{', '.join(LAYER_PATHS)}. Pass the attribute path of its layer list, e.g. "
        "--layers-path model.layers (ModelSpec(layers_path=...))."
    )
