"""Domain errors, written for the person who will read them.

The core raises these; the UI turns them into ``gr.Error`` and the CLI prints them
and exits with status 2. Every message says what is wrong and how to fix it.
"""


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
