"""One module per tab: its layout (``layout``) and its events (``wire``)."""
