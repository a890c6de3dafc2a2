"""GGUF control vectors between steer-ui and repeng (0.4.0, in bench/.venv-peers).

    python bench/run.py --only interop --peers

Two directions, both on SmolLM2-135M in fp32, greedy:
- repeng -> us: repeng trains a vector (pca_diff) and writes it with its own
  ``export_gguf``; we import the file: every ``direction.k`` must land on our layer k,
  the layer repeng's ``ControlModel`` wraps (``model.layers[k]``), bit for bit. Steering
  with the imported vector (raw mode, the same coefficient, the same layers) must give
  repeng's ControlModel text token for token.
- us -> repeng: a one-layer vector we export is read by repeng's ``import_gguf`` and
  applied by ``ControlModel``; its text must equal ours at that layer.
llama.cpp itself is checked in tests/test_llamacpp_oracle.py.
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path

import common
from common import Row, log

NAME = "interop"
PROMPT = "Tell me about your day."
LAYERS = (10, 15, 20)  # steered at once, as repeng users do with a layer range
COEFFS = (2.0, -2.0)


def run(args) -> list[Row]:
    if not args.peers:
        return [Row(NAME, "GGUF interop with repeng", [], None, "", note="not run: needs --peers")]
    import torch

    import peers
    from steer_ui.concepts.extraction import extract_concept
    from steer_ui.concepts.files import export_gguf, import_gguf
    from steer_ui.models import zoo
    from steer_ui.models.tokens import encode
    from steer_ui.steering.generation import Sampling, generate

    peers.ensure()
    lm = common.model("smollm2-135m")
    from extraction import contrast_set

    cs = contrast_set(16)
    pos_t, neg_t = cs.texts(lm)
    tokens = 16 if args.quick else 32
    ids = encode(lm, [lm.chat(PROMPT)])["input_ids"][0].tolist()
    tmp = Path(tempfile.mkdtemp(prefix="steer-interop-"))
    ours_vec = extract_concept(lm, cs).vector
    one_layer = _only(ours_vec, [15], torch)
    export_gguf(one_layer, tmp / "ours.gguf", "llama", layers=[15])
    log("  repeng trains, exports, reads and steers (in the peers venv)")
    with peers.Peer(zoo.gguf_file(zoo.get("smollm2-135m")),
                    {"positive": pos_t, "negative": neg_t, "pad_token_id": lm.tokenizer.pad_token_id},
                    args.threads) as peer:
        written = peer.call(cmd="repeng_gguf", path=str(tmp / "repeng.gguf"))
        theirs_gguf = str(tmp / "repeng-layers.gguf")
        imported = import_gguf(written["path"], lm.name, lm.n_layers, lm.hidden_size)
        export_gguf(_only(imported, LAYERS, torch), theirs_gguf, "llama", layers=list(LAYERS))
        runs = {c: peer.call(cmd="repeng_control", path=theirs_gguf, input_ids=ids, coeff=c, max_new_tokens=tokens)
                for c in COEFFS}
        ours_in_repeng = peer.call(cmd="repeng_control", path=str(tmp / "ours.gguf"), input_ids=ids, coeff=1.0,
                                   max_new_tokens=tokens)

    # repeng -> us: the layer each direction lands on
    placed = [float(torch.equal(imported.directions[int(k)], torch.tensor(v))) for k, v in written["directions"].items()]
    unset = [k for k in range(lm.n_layers) if str(k) not in {str(x) for x in written["directions"]}]
    stray = [float(imported.directions[k].abs().sum() == 0) for k in unset]
    # ... and the text: repeng's ControlModel vs our raw-mode steering, same coefficient and layers
    same, texts = [], {}
    for c, r in runs.items():
        ours = generate(lm, PROMPT, imported, [c], list(LAYERS), Sampling(tokens), mode="raw")[0]
        theirs = lm.tokenizer.decode(r["output"], skip_special_tokens=True)
        same.append(float(ours == theirs and r["layers"] == list(LAYERS)))
        texts[str(c)] = {"steer-ui": ours, "repeng": theirs}
    plain = generate(lm, PROMPT, None, [0.0], None, Sampling(tokens))[0]
    ours_15 = generate(lm, PROMPT, one_layer, [1.0], [15], Sampling(tokens), mode="raw")[0]
    theirs_15 = lm.tokenizer.decode(ours_in_repeng["output"], skip_special_tokens=True)
    texts["ours at 15 in repeng"] = {"steer-ui": ours_15, "repeng": theirs_15, "unsteered": plain}
    return [
        Row(NAME, "repeng GGUF direction.k imported onto our layer k (bit-exact)", placed, 1.0, "==", agg="min",
            over="layers", note=f"repeng wrote layers {min(map(int, written['directions']))}.."
                                f"{max(map(int, written['directions']))}"),
        Row(NAME, "layers repeng did not write stay zero", stray or [1.0], 1.0, "==", agg="min", over="layers"),
        Row(NAME, f"greedy text: repeng ControlModel = steer-ui raw, layers {list(LAYERS)}, coeff {list(COEFFS)}",
            same, 1.0, "==", agg="min", over="coefficients", note=f"{tokens} tokens, fp32",
            extra={"texts": texts}),
        Row(NAME, "greedy text: our layer-15 export in repeng's ControlModel = steer-ui at layer 15",
            [float(ours_15 == theirs_15 and ours_in_repeng["layers"] == [15] and ours_15 != plain)], 1.0, "==",
            agg="min", over="checks", note="and it differs from the unsteered text"),
    ]


def _only(v, layers, torch):
    """``v`` with every layer but ``layers`` zeroed."""
    d = torch.zeros_like(v.directions)
    d[list(layers)] = v.directions[list(layers)]
    return replace(v, directions=d, default_layer=layers[len(layers) // 2])
