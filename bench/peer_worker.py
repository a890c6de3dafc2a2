"""The peers' side of the extraction benchmark; runs inside ``bench/.venv-peers``.

    .venv-peers/bin/python bench/peer_worker.py --gguf F.gguf --prompts in.json --out out.json

Loads the GGUF with transformers 4.57 (fp32), configures the tokenizer so it produces
exactly steer-ui's token ids (no extra BOS: the chat-formatted texts already start with
the template's tokens; right padding; steer-ui's pad id), warms both libraries up on a
few pairs, then answers one JSON command per stdin line with one JSON line on stdout:

- ``{"cmd": "repeng"}``: time ``repeng.ControlVector.train`` (pca_diff, all layers)
- ``{"cmd": "sv", "batch_size": 1}``: time ``steering_vectors.train_steering_vector`` (mean)
- ``{"cmd": "generate", "input_ids": [...], "layer": L, "multipliers": [...], "max_new_tokens": N}``:
  greedy generation with the last steering-vectors vector at layer L (``SteeringVector
  ({L: v}).apply(model, multiplier=m)``; m == 0: no patch)
- ``{"cmd": "dump"}``: write directions, timings and generations to ``--out``
- ``{"cmd": "quit"}``

Only the library call is timed (wall and process CPU time); loading is not.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gguf", required=True)
    ap.add_argument("--prompts", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # whatever the libraries print goes to the log, never into the protocol
    sys.stdout = sys.stderr

    def send(obj) -> None:
        proto.write(json.dumps(obj) + "\n")
        proto.flush()

    try:
        state = setup(args)
        send(state.hello)
    except BaseException:  # noqa: BLE001 - reported to the parent
        send({"error": traceback.format_exc()})
        return
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            cmd = json.loads(line)
            if cmd["cmd"] == "quit":
                break
            send(state.handle(cmd))
        except BaseException:  # noqa: BLE001
            send({"error": traceback.format_exc()})


class State:
    def __init__(self, args, model, tok, pos, neg):
        self.args, self.model, self.tok, self.pos, self.neg = args, model, tok, pos, neg
        self.n_layers = model.config.num_hidden_layers
        self.directions: dict[str, dict[int, list[float]]] = {}
        self.timings: list[dict] = []
        self.generations: list[dict] = []
        self.sv_vector = None
        self.hello: dict = {}

    def _time(self, fn):
        w0, c0 = time.perf_counter(), time.process_time()
        res = fn()
        return res, time.perf_counter() - w0, time.process_time() - c0

    def repeng(self, pos, neg, **kw):
        from repeng import ControlVector, DatasetEntry

        data = [DatasetEntry(p, n) for p, n in zip(pos, neg)]
        return ControlVector.train(self.model, self.tok, data, hidden_layers=list(range(self.n_layers)),
                                   method="pca_diff", **kw)

    def sv(self, pos, neg, batch_size):
        from steering_vectors import train_steering_vector

        return train_steering_vector(self.model, self.tok, list(zip(pos, neg)), batch_size=batch_size)

    def handle(self, cmd: dict) -> dict:
        import torch

        name = cmd["cmd"]
        if name == "repeng":
            kw = {"batch_size": cmd["batch_size"]} if cmd.get("batch_size") else {}
            cv, wall, cpu = self._time(lambda: self.repeng(self.pos, self.neg, **kw))
            self.directions["repeng"] = {int(k): v.astype("float32").tolist() for k, v in cv.directions.items()}
            t = {"lib": "repeng", "batch_size": kw.get("batch_size", 32), "wall": wall, "cpu": cpu}
            self.timings.append(t)
            return t
        if name == "sv":
            bs = int(cmd.get("batch_size", 1))
            vec, wall, cpu = self._time(lambda: self.sv(self.pos, self.neg, bs))
            self.sv_vector = vec
            self.directions[f"sv_b{bs}"] = {int(k): v.float().tolist() for k, v in vec.layer_activations.items()}
            t = {"lib": "steering-vectors", "batch_size": bs, "wall": wall, "cpu": cpu}
            self.timings.append(t)
            return t
        if name == "generate":
            from steering_vectors import SteeringVector

            layer = int(cmd["layer"])
            v = self.sv_vector.layer_activations[layer].float()
            single = SteeringVector({layer: v}, "decoder_block")
            ids = torch.tensor([cmd["input_ids"]])
            mask = torch.ones_like(ids)
            kw = dict(max_new_tokens=int(cmd["max_new_tokens"]), do_sample=False, temperature=None, top_p=None,
                      top_k=None, pad_token_id=self.tok.pad_token_id)
            outputs = {}
            with torch.inference_mode():
                for m in cmd["multipliers"]:
                    if m == 0:
                        out = self.model.generate(input_ids=ids, attention_mask=mask, **kw)
                    else:
                        with single.apply(self.model, multiplier=float(m)):
                            out = self.model.generate(input_ids=ids, attention_mask=mask, **kw)
                    outputs[str(m)] = out[0, ids.shape[1]:].tolist()
            g = {"layer": layer, "vector": v.tolist(), "outputs": outputs}
            self.generations.append(g)
            return g
        if name == "repeng_gguf":
            # repeng's own vector and its own GGUF writer (ControlVector.export_gguf)
            cv = self.repeng(self.pos, self.neg)
            cv.export_gguf(cmd["path"])
            return {"path": cmd["path"], "directions": {int(k): v.astype("float32").tolist()
                                                        for k, v in cv.directions.items()}}
        if name == "repeng_control":
            # a GGUF read by repeng (ControlVector.import_gguf), applied by ControlModel to the
            # layers it names, greedy generation
            from repeng import ControlModel, ControlVector

            cv = ControlVector.import_gguf(cmd["path"])
            layers = sorted(int(k) for k in cv.directions)
            ids = torch.tensor([cmd["input_ids"]])
            kw = dict(max_new_tokens=int(cmd["max_new_tokens"]), do_sample=False, temperature=None, top_p=None,
                      top_k=None, pad_token_id=self.tok.pad_token_id)
            control = ControlModel(self.model, layers)
            try:
                control.set_control(cv, float(cmd["coeff"]))
                with torch.inference_mode():
                    out = control.generate(input_ids=ids, attention_mask=torch.ones_like(ids), **kw)
            finally:
                control.unwrap()  # repeng wraps the model's layers in place
            return {"layers": layers, "output": out[0, ids.shape[1]:].tolist()}
        if name == "dump":
            Path(self.args.out).write_text(json.dumps({
                "hello": self.hello, "directions": self.directions, "timings": self.timings,
                "generations": self.generations}))
            return {"ok": True}
        raise ValueError(f"unknown command {name!r}")


def setup(args) -> State:
    import importlib.metadata as md

    import torch

    torch.set_num_threads(args.threads)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    prompts = json.loads(Path(args.prompts).read_text())
    gguf = Path(args.gguf)
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, torch_dtype=torch.float32)
    model.eval()
    # Same token ids as steer-ui: its texts are chat-formatted and carry their own
    # special tokens, and steer-ui tokenizes them without adding any.
    tok.add_bos_token = False
    tok.padding_side = "right"  # both libraries read the last non-pad token; positions stay 0..n-1
    tok.pad_token_id = int(prompts["pad_token_id"])
    pos, neg = prompts["positive"], prompts["negative"]
    state = State(args, model, tok, pos, neg)
    w = int(prompts.get("warmup_pairs", 4))
    state.repeng(pos[:w], neg[:w])
    state.sv(pos[:w], neg[:w], 1)
    state.hello = {
        "versions": {p: md.version(p) for p in ("torch", "transformers", "numpy", "repeng", "steering-vectors")},
        "token_ids": [tok(t)["input_ids"] for t in pos + neg],
        "threads": torch.get_num_threads(), "n_layers": state.n_layers,
        "attn": getattr(model.config, "_attn_implementation", None),
    }
    return state


if __name__ == "__main__":
    main()
