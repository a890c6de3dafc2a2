"""Where in a text the model holds a concept: each token's residual at one layer,
projected on the concept's direction and z-scored against the contrast set's own
projections (0: the middle of the contrast set; +1: one spread toward the positive side).
"""

from __future__ import annotations

import html
from dataclasses import dataclass

import torch

from ..errors import ContrastError, LayerError, out_of_memory
from ..models.tokens import token_ids
from .vectors import ConceptVector

MAX_HTML_TOKENS = 4096


@dataclass(frozen=True)
class Heatmap:
    """One text's tokens and their concept scores at one layer."""

    model: str
    layer: int
    tokens: list[str]
    projections: list[float]  # raw: residual . unit direction
    z: list[float]  # against the contrast set's projections at this layer


def token_heatmap(lm, text: str, vector: ConceptVector, layer: int,
                  pos: torch.Tensor, neg: torch.Tensor) -> Heatmap:
    """Score every token of ``text`` (as typed: no chat template) in ``lm`` at ``layer``;
    ``pos``/``neg`` (n, layers, d) are the contrast activations the z-score is against."""
    from ..steering.hooks import check_fits

    if not text or not text.strip():
        raise ContrastError("Type or pick a text to draw the heatmap of.")
    check_fits(vector, lm)
    if not 0 <= layer < lm.n_layers:
        raise LayerError(f"Layer {layer} is out of range: {lm.name} has layers 0..{lm.n_layers - 1}.")
    ids = token_ids(lm, [text], "The heatmap text")[0]
    hidden = _layer_output(lm, ids, layer)  # (seq, d)
    unit = vector.unit(layer)
    proj = hidden @ unit  # (seq,)
    ref = torch.cat([pos[:, layer], neg[:, layer]]) @ unit  # (2n,)
    z = (proj - ref.mean()) / ref.std().clamp_min(1e-6)
    z[0] = 0.0  # the first token is an attention sink (norm 50-200x the rest): not scored
    tokens = [lm.tokenizer.decode([i]) for i in ids]
    return Heatmap(lm.name, layer, tokens, proj.tolist(), z.tolist())


def _layer_output(lm, ids: list[int], layer: int) -> torch.Tensor:
    """The residual stream after ``layer`` for one token sequence: (seq, d) float32 on CPU."""
    got: dict = {}

    def hook(module, args, output):
        got["h"] = (output[0] if isinstance(output, tuple) else output)[0].float().cpu()

    with lm.lock, torch.inference_mode(), out_of_memory("drawing the heatmap", "use a shorter text."):
        handle = lm.layers[layer].register_forward_hook(hook)
        try:
            lm.model(input_ids=torch.tensor([ids], device=lm.device), use_cache=False, logits_to_keep=1)
        finally:
            handle.remove()
    return got["h"]


def to_html(hm: Heatmap, clip: float = 3.0) -> str:
    """The tokens as coloured spans (blue: negative side, red: positive side, by z);
    hovering a token shows its z-score and raw projection."""
    spans = []
    for i, (tok, z, p) in enumerate(list(zip(hm.tokens, hm.z, hm.projections))[:MAX_HTML_TOKENS]):
        a = min(abs(z), clip) / clip
        title = f"z {z:+.2f} · projection {p:+.3g}" if i else "first token: attention sink, not scored"
        rgb = "220,38,38" if z > 0 else "37,99,235"
        text = html.escape(tok).replace("\n", "↵<br>")
        spans.append(f'<span class="hm-tok" title="{title}" '
                     f'style="background: rgba({rgb},{a * 0.85:.2f}); border-radius: 3px; '
                     f'white-space: pre-wrap">{text}</span>')
    head = (f'<div class="hm-head"><b>{html.escape(hm.model)}</b>, layer {hm.layer}: '
            f'{len(hm.tokens)} tokens; mean z {sum(hm.z[1:]) / max(len(hm.z) - 1, 1):+.2f} '
            '(<span style="color:#dc2626">red</span>: the positive side, '
            '<span style="color:#2563eb">blue</span>: the negative)</div>')
    return f'<div class="hm">{head}<div class="hm-text" style="line-height: 1.9">{"".join(spans)}</div></div>'
