"""docs/TRANSFER.md's honest-methodology table: held-out R² by row split vs by text split,
cosine with the native vector beside chance, AUC and norm kept, per map.

    .venv/bin/python bench/transfer_honest.py happy-sad,formal-casual out.json ridge,procrustes,anchor

qwen2.5-0.5b -> smollm2-135m, 16 pairs per preset, the concept's family left out, 200 neutral texts.
"""
import json
import sys
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parents[1] / "tests")]
from conftest import real_model  # noqa: E402 (after the path set-up)
from steer_ui.concepts import contrast  # noqa: E402 (after the path set-up)
from steer_ui.concepts.extraction import extract_concept  # noqa: E402 (after the path set-up)
from steer_ui.concepts.recording import typical_norms  # noqa: E402 (after the path set-up)
from steer_ui.transfer import diagnostics, paired, maps  # noqa: E402 (after the path set-up)

t0 = time.time()
llm, slm = real_model("qwen2.5-0.5b"), real_model("smollm2-135m")
ln, sn = typical_norms(llm), typical_norms(slm)
out = {}
for preset in sys.argv[1].split(","):
    cs = contrast.from_preset(preset, 16)
    native, source = extract_concept(slm, cs), extract_concept(llm, cs)
    pairs = paired.collect(llm, slm, ("concept", "neutral"), preset, 200)
    j = native.vector.default_layer
    i = maps.depth_pairs(llm.n_layers, slm.n_layers)[j]
    x, y = pairs.x[:, i] / float(ln[i]), pairs.y[:, j] / float(sn[j])
    rtr, rte = maps.row_split(len(x))
    leak = len(set(pairs.groups()[rtr]) & set(pairs.groups()[rte]))
    res = {"layer": [i, j], "data": pairs.data.as_dict(), "rows": len(pairs),
           "row_split_shared_groups": leak, "test_groups": len(set(pairs.groups()[rte]))}
    for m in sys.argv[3].split(","):
        r_row = maps.fit_layer(x, y, m, rtr, rte, pairs.source)[2]
        vec, lm, _ = maps.transfer(source.vector, llm, slm, pairs, m, "depth")
        rep = diagnostics.diagnose(vec, lm, native.vector, native.pos.numpy(), native.neg.numpy())
        s = rep.summary()
        res[m] = {"r2_row": {k: round(v, 3) for k, v in r_row.items()}, **s}
        print(preset, m, json.dumps(res[m]), f"{time.time()-t0:.0f}s", flush=True)
    out[preset] = res
    print(json.dumps({k: v for k, v in res.items() if k not in maps.MAPS}), flush=True)
json.dump(out, open(sys.argv[2], "w"), indent=1)
