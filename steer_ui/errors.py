"""Domain errors, written for the person who will read them.

The core raises these; the UI turns them into ``gr.Error`` and the CLI prints them
and exits with status 2. Every message says what is wrong and how to fix it.
"""

from contextlib import contextmanager


class SteerError(Exception):
    """Base class: a problem the user can act on (bad input, missing model ...)."""


class ModelError(SteerError):
    """A model could not be found, installed, loaded or understood."""


class ContrastError(SteerError):
    """Contrast prompts are missing, unpaired or otherwise unusable."""


class LayerError(SteerError):
    """A layer index or range does not exist in the model."""


class IntensityError(SteerError):
    """An intensity is not a usable finite number."""


class VectorError(SteerError):
    """A concept vector does not fit the model, or a vector file is unusable."""


class TransferError(SteerError):
    """A concept cannot be carried from one model into another as asked."""


class DatasetError(SteerError):
    """An evaluation dataset is malformed or too small."""


class ResourceError(SteerError):
    """The machine ran out of memory for what was asked."""


def is_out_of_memory(exc: BaseException) -> bool:
    """True for torch's GPU/MPS out-of-memory errors and a CPU allocator failure."""
    import torch

    return isinstance(exc, (torch.OutOfMemoryError, MemoryError)) or (
        isinstance(exc, RuntimeError) and "can't allocate memory" in str(exc))


@contextmanager
def out_of_memory(action: str, fix: str):
    """Turn an out-of-memory error raised inside the block into a ``ResourceError``
    that says what ran out (``action``) and what to try (``fix``)."""
    try:
        yield
    except (RuntimeError, MemoryError) as exc:
        if not is_out_of_memory(exc):
            raise
        raise ResourceError(f"Out of memory while {action}: {fix}") from exc


class EngineError(SteerError):
    """A generation engine cannot serve this model or request (the torch engine always can)."""
