"""steer_ui.models: layer discovery, device/dtype choice, chat text, pad token, spec kinds."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from conftest import make_tiny, tiny_tokenizer
from steer_ui import models, zoo
from steer_ui.errors import ModelError
from steer_ui.models import (ModelSpec, choose_device, choose_dtype, ensure_pad_token, find_layers,
                             format_chat, format_messages)


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_thread_module):
    yield


ARCHS = ["llama", "qwen2", "gemma3", "gpt2"]


# ---------- find_layers ----------

@pytest.mark.parametrize("arch", ARCHS)
def test_find_layers_on_every_tiny_arch(arch):
    lm = make_tiny(arch)
    layers = find_layers(lm.model)
    assert isinstance(layers, nn.ModuleList)
    assert len(layers) == 3
    expected = lm.model.transformer.h if arch == "gpt2" else lm.model.model.layers
    assert layers is expected
    assert lm.n_layers == 3 and lm.hidden_size == 32


def test_layers_path_override_is_followed():
    lm = make_tiny("llama")
    assert find_layers(lm.model, "model.layers") is lm.model.model.layers


def test_layers_path_override_that_leads_nowhere():
    lm = make_tiny("llama")
    with pytest.raises(ModelError, match=r"'model\.nothing' does not lead to a non-empty ModuleList"):
        find_layers(lm.model, "model.nothing")
    # A path to something that is not a ModuleList is refused too.
    with pytest.raises(ModelError, match="does not lead"):
        find_layers(lm.model, "model.embed_tokens")


def test_layers_path_finds_custom_layout():
    class Odd(nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone = nn.Module()
            self.backbone.blocks = nn.ModuleList([nn.Linear(2, 2) for _ in range(4)])

    m = Odd()
    assert find_layers(m, "backbone.blocks") is m.backbone.blocks
    with pytest.raises(ModelError, match="Could not find the decoder layers of this Odd"):
        find_layers(m)


def test_plain_module_error_tells_how_to_set_the_path():
    with pytest.raises(ModelError) as info:
        find_layers(nn.Sequential(nn.Linear(2, 2)))
    msg = str(info.value)
    assert "Sequential" in msg
    assert "--layers-path" in msg and "layers_path" in msg
    assert "model.layers" in msg and "transformer.h" in msg  # lists what it tried


def test_empty_module_list_is_not_layers():
    class Empty(nn.Module):
        def __init__(self):
            super().__init__()
            self.model = nn.Module()
            self.model.layers = nn.ModuleList()

    with pytest.raises(ModelError, match="Could not find the decoder layers"):
        find_layers(Empty())


# ---------- device and dtype ----------

def test_choose_device_explicit_cpu():
    assert choose_device("cpu") == torch.device("cpu")


def test_choose_device_unknown_name():
    with pytest.raises(ModelError, match=r"Unknown device 'tpu': use cuda, mps or cpu"):
        choose_device("tpu")


def test_choose_device_cuda_when_missing(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ModelError, match="no CUDA GPU"):
        choose_device("cuda")
    with pytest.raises(ModelError, match="no CUDA GPU"):
        choose_device("cuda:1")


def test_choose_device_mps_when_missing(monkeypatch):
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(ModelError, match="MPS is not available"):
        choose_device("mps")


def test_choose_device_default_falls_back_to_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert choose_device(None) == torch.device("cpu")
    assert choose_device("") == torch.device("cpu")


def test_choose_device_default_prefers_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert choose_device(None) == torch.device("cuda")


def test_choose_dtype_fp32_on_cpu_without_bf16(monkeypatch):
    monkeypatch.setattr(models, "cpu_has_bf16", lambda: False)
    assert choose_dtype(torch.device("cpu")) == torch.float32


def test_choose_dtype_bf16_on_cpu_with_bf16(monkeypatch):
    monkeypatch.setattr(models, "cpu_has_bf16", lambda: True)
    assert choose_dtype(torch.device("cpu")) == torch.bfloat16


def test_choose_dtype_mps_is_fp32(monkeypatch):
    monkeypatch.setattr(models, "cpu_has_bf16", lambda: True)
    assert choose_dtype(torch.device("mps")) == torch.float32


def test_choose_dtype_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert choose_dtype(torch.device("cuda")) == torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert choose_dtype(torch.device("cuda")) == torch.float16


@pytest.mark.parametrize("name,expected", [
    ("bfloat16", torch.bfloat16), ("bf16", torch.bfloat16), ("float16", torch.float16),
    ("fp16", torch.float16), ("float32", torch.float32), ("FP32", torch.float32),
])
def test_choose_dtype_explicit_overrides(monkeypatch, name, expected):
    # The request wins over what the hardware would pick.
    monkeypatch.setattr(models, "cpu_has_bf16", lambda: True)
    assert choose_dtype(torch.device("cpu"), name) == expected


def test_choose_dtype_unknown():
    with pytest.raises(ModelError, match=r"Unknown dtype 'int3'.*bfloat16, float16 or float32"):
        choose_dtype(torch.device("cpu"), "int3")


@pytest.mark.parametrize("cpuinfo,expected", [
    ("processor\t: 0\nflags\t\t: fpu sse2 avx2 fma avx512f avx512_bf16 amx_tile\n", True),
    ("flags\t\t: fpu sse2 avx2 amx_bf16 amx_tile\n", True),
    ("flags\t\t: fpu sse2 avx avx2 fma f16c avx512f\n", False),  # AVX512 without its BF16 part
    ("Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics bf16 i8mm\n", True),  # ARM
    ("Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32\n", False),
    ("model name\t: Xeon with bf16 in its marketing name\nflags\t\t: sse2 avx2\n", False),
])
def test_cpu_has_bf16_reads_the_flags(cpuinfo, expected):
    assert models.cpu_has_bf16(cpuinfo) is expected



# ---------- chat text ----------

def test_format_chat_without_template_is_plain_text():
    tok = tiny_tokenizer()
    assert not getattr(tok, "chat_template", None)
    assert format_chat(tok, "hello") == "hello\n"
    assert format_chat(tok, "hello", system="be nice") == "be nice\nhello\n"
    assert format_chat(tok, "hello", assistant_prefix="Sure") == "hello\nSure"


TEMPLATE = ("{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}</{{ m['role'] }}>{% endfor %}"
            "{% if add_generation_prompt %}<assistant>{% endif %}")


def test_format_chat_with_template():
    tok = tiny_tokenizer()
    tok.chat_template = TEMPLATE
    assert format_chat(tok, "hi") == "<user>hi</user><assistant>"
    assert format_chat(tok, "hi", system="sys", assistant_prefix="I am") == \
        "<system>sys</system><user>hi</user><assistant>I am"


def test_format_messages_and_loaded_model_chat():
    lm = make_tiny("llama")
    msgs = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
            {"role": "user", "content": "c"}]
    assert format_messages(lm.tokenizer, msgs) == "a\nb\nc\n"
    assert lm.chat("x", assistant_prefix="y") == "x\ny"
    lm.tokenizer.chat_template = TEMPLATE
    assert lm.chat_messages(msgs) == "<user>a</user><assistant>b</assistant><user>c</user><assistant>"


# ---------- pad token ----------

def test_ensure_pad_token_uses_eos():
    tok = tiny_tokenizer()
    assert tok.pad_token is None
    ensure_pad_token(tok)
    assert tok.pad_token == "<eos>"
    assert tok.pad_token_id == tok.convert_tokens_to_ids("<eos>")


def test_ensure_pad_token_keeps_existing():
    tok = tiny_tokenizer()
    tok.pad_token = "<pad>"
    ensure_pad_token(tok)
    assert tok.pad_token == "<pad>"
    assert tok.pad_token_id == 0


def test_ensure_pad_token_without_eos_or_unk_adds_one():
    from tokenizers import Tokenizer, pre_tokenizers
    from tokenizers import models as tmodels
    from transformers import PreTrainedTokenizerFast

    raw = Tokenizer(tmodels.WordLevel({"a": 0, "b": 1, "[UNK]": 2}, unk_token="[UNK]"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=raw)
    assert tok.pad_token is None and tok.eos_token is None and tok.unk_token is None
    ensure_pad_token(tok)
    assert tok.pad_token == "<|pad|>"
    assert tok.pad_token_id is not None
    batch = tok(["a", "a b"], padding=True)
    assert batch["input_ids"][0][-1] == tok.pad_token_id


def test_tiny_model_batches_with_padding():
    lm = make_tiny("llama")
    batch = lm.tokenizer(["the day", "the happy sad day"], padding=True, return_tensors="pt")
    assert batch["input_ids"].shape == (2, 4)
    assert batch["attention_mask"][0].tolist() == [1, 1, 0, 0]


# ---------- ModelSpec.kind ----------

def test_kind_bundled():
    for name in zoo.BUNDLED:
        assert ModelSpec(name).kind() == "bundled"
    assert ModelSpec("  smollm2-135m ").kind() == "bundled"


def test_kind_folder_with_config(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    assert ModelSpec(str(tmp_path)).kind() == "folder"


def test_kind_folder_without_config(tmp_path):
    with pytest.raises(ModelError, match="is a folder but not a model: it has no config.json"):
        ModelSpec(str(tmp_path)).kind()


def test_kind_gguf_file(tmp_path):
    f = tmp_path / "m.gguf"
    f.write_bytes(b"GGUF")
    assert ModelSpec(str(f)).kind() == "gguf"


def test_kind_other_file(tmp_path):
    f = tmp_path / "m.bin"
    f.write_bytes(b"x")
    with pytest.raises(ModelError, match="is a file but not a .gguf model file"):
        ModelSpec(str(f)).kind()


def test_kind_hub_id(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # so "org/name" is surely not a local path
    assert ModelSpec("org/name").kind() == "hub"
    assert ModelSpec("Qwen/Qwen2.5-0.5B-Instruct").kind() == "hub"


@pytest.mark.parametrize("src", ["nope", "a/b/c", "org/", "org name/x"])
def test_kind_unknown_lists_bundled_names(tmp_path, monkeypatch, src):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelError) as info:
        ModelSpec(src).kind()
    msg = str(info.value)
    assert "Unknown bundled model" in msg and repr(src) in msg
    for name in zoo.BUNDLED:
        assert name in msg


@pytest.mark.parametrize("src", ["", "   "])
def test_kind_empty(src):
    with pytest.raises(ModelError, match="No model given"):
        ModelSpec(src).kind()


# ---------- LoadedModel odds and ends ----------

def test_loaded_model_facts_and_norms():
    lm = make_tiny("gpt2")
    facts = lm.facts()
    assert facts["layers"] == 3 and facts["hidden size"] == 32
    assert facts["dtype"] == "float32" and facts["device"] == "cpu"
    assert lm.family == "gpt2"
    assert lm.n_params() == sum(p.numel() for p in lm.model.parameters())
    assert lm.memory_bytes() == 4 * lm.n_params()
    norms = lm.typical_norms()
    assert norms.shape == (3,)
    assert lm.typical_norms() is norms  # computed once
