"""Which torch device a command runs on (`--device auto|cpu|cuda[:N]`), and autocast for it.

CPU is the default everywhere. Models, replay buffers and planners live on the chosen device;
environments, their skill decoders and checkpoints on disk stay on the CPU, so a checkpoint written
on one device loads onto any other.
"""

from __future__ import annotations

from typing import Literal

import torch

from skillplan.errors import ConfigError

DEVICE_HELP = "auto (CUDA when available, else CPU), cpu, cuda or cuda:N."
# auto: bf16 only where the device computes it natively; emulated bf16 is slower than fp32
Precision = Literal["auto", "fp32", "bf16"]


def available_devices() -> list[str]:
    """The devices this machine offers: cpu, then cuda:0 … cuda:N-1."""
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return ["cpu", *(f"cuda:{i}" for i in range(gpus))]


def resolve_device(spec: str | torch.device = "cpu") -> torch.device:
    """The torch device `spec` names; `auto` is CUDA when available, else the CPU.

    An unknown name, or a CUDA device this machine does not have, is a `ConfigError` that lists the
    devices there are.
    """
    if isinstance(spec, torch.device):
        spec = str(spec)
    text = spec.strip().lower()
    if text == "auto":
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    there = ", ".join(available_devices())
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        device = None
    if device is None or device.type not in ("cpu", "cuda"):
        raise ConfigError(f"Unknown device '{spec}'. Use auto, cpu, cuda or cuda:N; this machine has: "
                          f"{there}.")
    if device.type == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        build = ("a CPU-only torch build" if torch.version.cuda is None
                 else f"torch built for CUDA {torch.version.cuda}")
        raise ConfigError(f"Device '{spec}' asks for CUDA, but no CUDA device is available here ({build}, "
                          f"torch {torch.__version__}). Devices on this machine: {there}. Use --device cpu, "
                          "or --device auto to take a GPU only where there is one.")
    index = 0 if device.index is None else device.index
    if index >= torch.cuda.device_count():
        raise ConfigError(f"Device '{spec}' does not exist: this machine has {torch.cuda.device_count()} "
                          f"CUDA device(s). Devices on this machine: {there}.")
    return torch.device("cuda", index)


def has_bf16_units(device: torch.device) -> bool:
    """Whether `device` computes bfloat16 natively: a GPU that supports it, or a CPU with AVX512-BF16
    or AMX (without them CPU bf16 is emulated: pretraining ran 2.7× slower than fp32, docs/speed.md)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    cpu = torch.cpu
    return device.type == "cpu" and (cpu._is_avx512_bf16_supported() or cpu._is_amx_tile_supported())


def uses_bf16(device: torch.device, precision: Precision) -> bool:
    """Whether `precision` runs bfloat16 autocast on `device` (never on a GPU without bfloat16)."""
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return False
    return precision == "bf16" or (precision == "auto" and has_bf16_units(device))


def bf16_autocast(device: torch.device, precision: Precision) -> torch.autocast:
    """bfloat16 autocast on `device`'s type where `precision` asks for it (see `uses_bf16`)."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=uses_bf16(device, precision))
