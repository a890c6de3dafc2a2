"""Where a model runs and in which dtype: CUDA, then MPS, then CPU; bf16 where the
hardware has it (CUDA, CPUs with AVX512-BF16/AMX or ARM BF16), else fp32."""

from __future__ import annotations

import platform
from pathlib import Path

import torch

from ..errors import ModelError

BF16_FLAGS = {"avx512_bf16", "amx_bf16", "bf16"}  # x86 AVX512-BF16 / AMX; "bf16" in ARM's Features


def cpu_has_bf16(cpuinfo: str | None = None) -> bool:
    """True on CPUs with native bf16 math, read from the flags (x86) or Features (ARM)
    lines of /proc/cpuinfo; Apple silicon (no /proc) counts as having it."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return platform.system() == "Darwin" and platform.machine() == "arm64"
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features") and BF16_FLAGS & set(value.split()):
            return True
    return False


def choose_device(requested: str | None = None) -> torch.device:
    """The requested device, else CUDA, then MPS, then CPU."""
    if requested:
        if requested.startswith("cuda") and not torch.cuda.is_available():
            raise ModelError("--device cuda was asked for but no CUDA GPU is visible to torch.")
        if requested == "mps" and not torch.backends.mps.is_available():
            raise ModelError("--device mps was asked for but MPS is not available.")
        if requested.split(":")[0] not in ("cuda", "mps", "cpu"):
            raise ModelError(f"Unknown device {requested!r}: use cuda, mps or cpu.")
        return torch.device(requested)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


DTYPES = {"bfloat16": torch.bfloat16, "bf16": torch.bfloat16, "float16": torch.float16,
          "fp16": torch.float16, "float32": torch.float32, "fp32": torch.float32}


def choose_dtype(device: torch.device, requested: str | None = None) -> torch.dtype:
    """The requested dtype, else bf16 on CUDA and bf16-capable CPUs, else fp32."""
    if requested:
        try:
            return DTYPES[requested.lower()]
        except KeyError:
            raise ModelError(f"Unknown dtype {requested!r}: use bfloat16, float16 or float32.") from None
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu" and cpu_has_bf16():
        return torch.bfloat16
    return torch.float32
