"""Text to model input, one rule for every caller: which texts get the tokenizer's
special tokens (its BOS), padding on either side without touching the shared
tokenizer, and the context-length check that names the text that is too long."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..errors import ContrastError


def add_special_tokens(tokenizer, text: str) -> bool:
    """Whether ``text`` should get the tokenizer's special tokens (its BOS, for models
    that expect one: Llama-3, Gemma). Chat-formatted text already carries them, so it
    gets none; plain text (corpora, raw completions) gets them."""
    bos = getattr(tokenizer, "bos_token", None)
    if bos and text.startswith(bos):
        return False
    opening = template_opening(tokenizer)
    return not (opening and text.startswith(opening))


def template_opening(tokenizer) -> str:
    """The text every chat-formatted prompt of ``tokenizer`` starts with ("" without a template)."""
    cached = getattr(tokenizer, "_steer_ui_opening", None)
    if cached is not None:
        return cached
    opening = ""
    if getattr(tokenizer, "chat_template", None):
        a, b = (tokenizer.apply_chat_template([{"role": "user", "content": c}], tokenize=False,
                                              add_generation_prompt=True) for c in ("x", "y"))
        opening = a[: next((i for i, (p, q) in enumerate(zip(a, b)) if p != q), 0)]
    tokenizer._steer_ui_opening = opening
    return opening


def token_ids(lm, texts: Sequence[str], what: str = "Text") -> list[list[int]]:
    """Token ids of each text (no padding; BOS per ``add_special_tokens``);
    ``ContrastError`` past the model's context, naming the text as ``what #n``."""
    tok = lm.tokenizer
    ids = [tok(t, add_special_tokens=add_special_tokens(tok, t))["input_ids"] for t in texts]
    check_context(lm, [len(i) for i in ids], what)
    return ids


def encode(lm, texts: Sequence[str], padding_side: str = "right") -> dict:
    """Tokenize ``texts`` as one padded batch on the model's device.

    The tokenizer's own ``padding_side`` is never touched (it is shared by every user
    of the model); padding is done here, on the side asked for.
    """
    ids = token_ids(lm, texts)
    pad = lm.tokenizer.pad_token_id if lm.tokenizer.pad_token_id is not None else 0
    ids_t, mask = (pad_left if padding_side == "left" else pad_right)(ids, pad)
    return {"input_ids": ids_t.to(lm.device), "attention_mask": mask.to(lm.device)}


def check_context(lm, lengths: Sequence[int], what: str = "Text") -> None:
    """``ContrastError`` naming the longest text (as ``what #n``) if it exceeds the context."""
    limit = getattr(lm.model.config, "max_position_embeddings", None)
    longest = max(range(len(lengths)), key=lambda i: lengths[i])
    if limit and lengths[longest] > limit:
        raise ContrastError(f"{what} #{longest + 1} is {lengths[longest]} tokens long, more than the "
                            f"model's context of {limit}. Shorten it.")


def pad_right(seqs: Sequence[Sequence[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, attention mask), each (rows, longest), padded on the right."""
    width = max(map(len, seqs))
    ids = torch.tensor([list(s) + [pad] * (width - len(s)) for s in seqs])
    mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in seqs])
    return ids, mask


def pad_left(seqs: Sequence[Sequence[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, attention mask), each (rows, longest), padded on the left (for generation)."""
    width = max(map(len, seqs))
    ids = torch.tensor([[pad] * (width - len(s)) + list(s) for s in seqs])
    mask = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in seqs])
    return ids, mask


def ensure_pad_token(tokenizer) -> None:
    """Batching needs a pad token; models without one pad with EOS (masked anyway)."""
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    if tokenizer.pad_token is None:
        tokenizer.add_special_tokens({"pad_token": "<|pad|>"})
