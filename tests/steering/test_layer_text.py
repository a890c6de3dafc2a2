"""steer_ui.steering.layer_text: layers as typed in the Steer tab and on the command line."""

from __future__ import annotations

import pytest

from steer_ui.errors import LayerError
from steer_ui.steering.layer_text import parse_layers


@pytest.mark.parametrize("text,layers", [("15", [15]), (" 10-14 ", [10, 11, 12, 13, 14]), ("8,12", [8, 12]),
                                         ("8, 10 - 12", [8, 10, 11, 12]), ("", None), (None, None), ("  ", None)])
def test_parse_layers(text, layers):
    assert parse_layers(text) == layers


def test_bad_layer_text_names_the_field_and_the_forms():
    with pytest.raises(LayerError, match=r"Steer at layer\(s\) 'ten' is not a layer, a range like 10-14"):
        parse_layers("ten", "Steer at layer(s)")
    with pytest.raises(LayerError, match="runs backwards; write it low-high, e.g. 10-14"):
        parse_layers("14-10")
