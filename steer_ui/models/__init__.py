"""The models wing: the bundled zoo, device and dtype choice, decoder-layer discovery,
chat formatting and tokenization, and loading a ``ModelSpec`` into a ``LoadedModel``."""
