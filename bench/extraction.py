"""Target 3: extraction of a 64-pair contrast set, all layers, against repeng and steering-vectors.

Same model (SmolLM2-135M from the same GGUF, fp32), same texts (steer-ui's
chat-formatted strings, passed to the peers verbatim, with the peer tokenizer set up to
give identical token ids: checked), same read position (the last token of each text:
steer-ui ``position="last"``; repeng reads the last non-pad token of ``hidden_states``;
steering-vectors' default ``read_token_index=-1``).

Timed: our ``extract_concept`` (activation cache cleared first, so it runs its forward
passes) and the peers' training call only (``ControlVector.train`` with ``pca_diff``
over all layers; ``train_steering_vector`` with the mean aggregator), each library at
its default batch size (ours 16, repeng 32, steering-vectors 1). Model loading and the
peer process start are outside the timed region. Rounds alternate: ours(pca), repeng,
ours(mean-diff), steering-vectors, ... with the order rotating.

Agreement: per layer cosine of our pca vs repeng pca_diff and of our mean-diff vs
steering-vectors' mean. repeng's reading of the last layer is ``hidden_states[-1]``,
which transformers replaces by the output of the final norm, so that layer is compared
separately (information). Steering: greedy generation with the same vector (the one
steering-vectors trained), same layer and multipliers, through our ``mode="raw"`` and
through ``SteeringVector.apply``; the generated texts must be identical.
"""

from __future__ import annotations

import common
from common import Row, Timed, interleave, log, model

NAME = "extraction"
PROMPT = "Tell me about your day."
MULTIPLIERS = [0.0, 2.0, 6.0, -6.0]


def contrast_set(pairs: int = 64):
    """happy-sad personas over 64 scenarios: the preset's 42, then other presets' ones."""
    from steer_ui.concepts.contrast import (
        ContrastSet,
        Prompt,
        load_preset,
        preset_names,
    )

    p = load_preset("happy-sad")
    scenarios = list(p["scenarios"])
    for other in preset_names():
        for s in load_preset(other)["scenarios"] if other != "happy-sad" else ():
            if s not in scenarios:
                scenarios.append(s)
    scenarios = scenarios[:pairs]

    def side(persona: str):
        return tuple(Prompt(p["template"].format(persona=persona, scenario=s)) for s in scenarios)

    return ContrastSet(f"happy-sad-{pairs}", side(p["positive_persona"]), side(p["negative_persona"]),
                       "bench")


def _cos(a, b) -> float:
    import torch

    a, b = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
    return float(a @ b / (a.norm() * b.norm()))


def run(args) -> list[Row]:
    from steer_ui.concepts import recording
    from steer_ui.concepts.extraction import extract_concept

    lm = model("smollm2-135m")
    cs = contrast_set(16 if args.quick else 64)
    pos_t, neg_t = cs.texts(lm)

    def ours(method):
        def f():
            recording._CACHE.clear()
            return extract_concept(lm, cs, method)
        return f

    if not args.peers:
        res = interleave({"pca": ours("pca"), "mean": ours("mean-diff")}, args.runs, warmup=0, log=log)
        return [Row(NAME, f"our extraction mean-diff / pca ({len(cs)} pairs, all layers)",
                    common.ratios(res["mean"], res["pca"]), None, "",
                    note="peers not run: use --peers for the comparison with repeng and steering-vectors")]
    return _with_peers(args, lm, cs, pos_t, neg_t, ours)


def _with_peers(args, lm, cs, pos_t, neg_t, ours) -> list[Row]:
    import torch

    import peers
    from steer_ui.concepts.vectors import ConceptVector
    from steer_ui.models import zoo
    from steer_ui.models.tokens import encode, token_ids
    from steer_ui.steering.generation import Sampling, generate

    versions = peers.ensure()
    gguf = zoo.gguf_file(zoo.get("smollm2-135m"))
    n = lm.n_layers
    our_ids = token_ids(lm, pos_t + neg_t)  # steer-ui's own tokenization (its BOS rule)
    log(f"  starting the peer worker (transformers {versions['transformers']}, loads the GGUF; not timed)")
    with peers.Peer(gguf, {"positive": pos_t, "negative": neg_t, "pad_token_id": lm.tokenizer.pad_token_id},
                    args.threads) as peer:
        same_ids = peer.hello["token_ids"] == our_ids

        def peer_arm(**cmd):
            def f():
                t = peer.call(**cmd)
                return Timed(t["wall"], t["cpu"], t)
            return f

        arms = {"ours_pca": ours("pca"), "repeng": peer_arm(cmd="repeng"),
                "ours_mean": ours("mean-diff"), "sv": peer_arm(cmd="sv", batch_size=1)}
        if not args.quick:
            arms["sv_b16"] = peer_arm(cmd="sv", batch_size=16)
        res = interleave(arms, args.runs, warmup=0, log=log)

        pca = res["ours_pca"]["result"][-1].vector
        mean = res["ours_mean"]["result"][-1].vector
        layer = mean.default_layer
        text = lm.chat(PROMPT)
        ids = encode(lm, [text], padding_side="left")["input_ids"][0].tolist()
        tokens = 16 if args.quick else 32
        gen = peer.call(cmd="generate", input_ids=ids, layer=layer, multipliers=MULTIPLIERS, max_new_tokens=tokens)
        dump = peer.finish()

    dirs = torch.zeros(n, lm.hidden_size)
    dirs[layer] = torch.tensor(gen["vector"], dtype=torch.float32)
    same_vec = ConceptVector(dirs, model=lm.name, method="mean-diff", name="steering-vectors mean",
                             default_layer=layer)
    identical, pairs_out = [], {}
    for m in MULTIPLIERS:
        ours_text = generate(lm, PROMPT, same_vec, [m], [layer], Sampling(max_new_tokens=tokens), mode="raw")[0]
        theirs = lm.tokenizer.decode(gen["outputs"][str(m)], skip_special_tokens=True)
        identical.append(float(ours_text == theirs))
        pairs_out[str(m)] = {"steer-ui": ours_text, "steering-vectors": theirs}
    changed = sum(pairs_out[str(m)]["steer-ui"] != pairs_out["0.0"]["steer-ui"] for m in MULTIPLIERS if m)

    rep, sv = dump["directions"]["repeng"], dump["directions"]["sv_b1"]
    cos_pca = [_cos(pca.directions[i], rep[str(i)]) for i in range(n - 1)]
    ex = res["ours_pca"]["result"][-1]
    flips = {}
    for i, c in enumerate(cos_pca):
        if c < 0:  # same axis, opposite orientation: say why
            d = pca.directions[i].double()
            proj = (ex.pos[:, i].double() - ex.neg[:, i].double()) @ d / d.norm()
            flips[i] = {"cos": round(c, 4), "pairs_projecting_positive": round(float((proj > 0).double().mean()), 3),
                        "mean_projection": round(float(proj.mean()), 4)}
    cos_pca_last = _cos(pca.directions[n - 1], rep[str(n - 1)])
    cos_mean = [_cos(mean.directions[i], sv[str(i)]) for i in range(n)]
    cos_shift = [_cos(mean.directions[i], sv[str(i + 1)]) for i in range(n - 1)]
    rel = [float((mean.directions[i].double() - torch.tensor(sv[str(i)], dtype=torch.float64)).norm()
                 / torch.tensor(sv[str(i)], dtype=torch.float64).norm()) for i in range(n)]

    setup = (f"SmolLM2-135M fp32, {len(cs)} pairs ({2 * len(cs)} texts, {sum(map(len, our_ids)) // len(our_ids)} "
             f"tokens on average), all {n} layers, last-token read; batch sizes: ours 16, repeng 32, "
             f"steering-vectors 1 (its default); peers: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    oc = common.other_clock()
    rows = [
        Row(NAME, "our extraction (pca) / repeng ControlVector.train (pca_diff)",
            common.ratios(res["ours_pca"], res["repeng"]), 0.7, "<=", note=setup,
            extra={"times": common.times(res), f"ratios_{oc}": common.ratios(res["ours_pca"], res["repeng"], oc)}),
        Row(NAME, "our extraction (mean-diff) / steering-vectors train (mean, batch 1)",
            common.ratios(res["ours_mean"], res["sv"]), 0.7, "<=", note=setup,
            extra={f"ratios_{oc}": common.ratios(res["ours_mean"], res["sv"], oc)}),
    ]
    if "sv_b16" in res:
        rows.append(Row(NAME, "our extraction (mean-diff) / steering-vectors train (mean, batch 16)",
                        common.ratios(res["ours_mean"], res["sv_b16"]), None, "",
                        note="information: steering-vectors at our batch size",
                        extra={f"ratios_{oc}": common.ratios(res["ours_mean"], res["sv_b16"], oc)}))
    rows += [
        Row(NAME, "token ids identical on both sides (all texts)", [float(same_ids)], 1.0, "==", agg="min",
            over="checks"),
        Row(NAME, f"cos(our pca, repeng pca_diff), layers 0-{n - 2}", cos_pca, 0.99, ">=", agg="min",
            over="layers"),
        Row(NAME, f"|cos(our pca, repeng pca_diff)|, layers 0-{n - 2} (axis only)", [abs(c) for c in cos_pca],
            None, "", over="layers",
            note=f"information: layers with opposite orientation: {sorted(flips) or 'none'}. repeng orients "
                 "a PC so most pairs project positive, we so the mean difference does; they differ where "
                 "the PC barely carries the concept", extra={"flipped_layers": flips}),
        Row(NAME, f"cos(our pca, repeng pca_diff), last layer {n - 1}", [cos_pca_last], None, "", over="layers",
            note="information: repeng reads hidden_states[-1], the final norm's output; we read the "
                 "last decoder layer's output"),
        Row(NAME, "cos(our mean-diff, steering-vectors mean), all layers", cos_mean, 0.99, ">=", agg="min",
            over="layers"),
        Row(NAME, "|our mean-diff - sv mean| / |sv mean|, all layers", rel, None, "", over="layers",
            note="information: same numbers up to float rounding"),
        Row(NAME, "cos(our mean-diff layer i, sv mean layer i+1)", cos_shift, None, "", over="layers",
            note="information: what an off-by-one layer convention would give; far below the same-index "
                 "cosine, so the indices agree"),
        Row(NAME, f"greedy text identical to steering-vectors (same vector, layer {layer}, raw x {MULTIPLIERS})",
            identical, 1.0, ">=", agg="min", over="multipliers",
            note=f"{tokens} new tokens; steering changed our text for {changed}/{len(MULTIPLIERS) - 1} "
                 "non-zero multipliers",
            extra={"texts": pairs_out, "peer_timings": dump["timings"]}),
    ]
    return rows
