"""steer_ui.models.devices: device and dtype choice, native bf16 detection."""

from __future__ import annotations

import pytest
import torch

from steer_ui.errors import ModelError
from steer_ui.models import devices
from steer_ui.models.devices import choose_device, choose_dtype


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_thread_module):
    yield


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
    monkeypatch.setattr(devices, "cpu_has_bf16", lambda: False)
    assert choose_dtype(torch.device("cpu")) == torch.float32


def test_choose_dtype_bf16_on_cpu_with_bf16(monkeypatch):
    monkeypatch.setattr(devices, "cpu_has_bf16", lambda: True)
    assert choose_dtype(torch.device("cpu")) == torch.bfloat16


def test_choose_dtype_mps_is_fp32(monkeypatch):
    monkeypatch.setattr(devices, "cpu_has_bf16", lambda: True)
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
    monkeypatch.setattr(devices, "cpu_has_bf16", lambda: True)
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
    assert devices.cpu_has_bf16(cpuinfo) is expected


