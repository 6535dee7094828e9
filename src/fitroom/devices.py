"""Which device a learned engine or a training run uses: ``--device auto|cpu|cuda|mps`` (``FITROOM_DEVICE``)."""

from __future__ import annotations

import os

import torch

from fitroom.errors import ConfigurationError

CHOICES = ("auto", "cpu", "cuda", "mps")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def native_bf16(device: torch.device | str = "cpu") -> bool:
    """Whether ``device`` computes bfloat16 natively (a CUDA GPU that supports it, or a CPU with AVX-512 BF16 or
    AMX); elsewhere bf16 is emulated and slower than float32."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        if not _onednn_may_use_bf16():
            return False
        checks = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
        return any(check() for check in checks if check is not None)
    return False


def _onednn_may_use_bf16() -> bool:
    """False when ``ONEDNN_MAX_CPU_ISA`` (or its older name ``DNNL_MAX_CPU_ISA``) holds oneDNN, which computes
    torch's CPU convolutions, to instruction sets without bf16 dot products (``AVX2``, ``AVX512_CORE``, ...): bf16
    is emulated then, as on a machine without it (which is also how to try such a machine's choices on this one)."""
    limit = (os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA") or "ALL").strip().upper()
    return limit in ("ALL", "DEFAULT") or "BF16" in limit or "AMX" in limit or "FP16" in limit


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """The torch device for ``name``: ``auto`` picks CUDA, then Apple's MPS, then the CPU; ``cuda`` (or ``cuda:N``)
    and ``mps`` must be present here, or a :class:`~fitroom.errors.ConfigurationError` says what is missing."""
    if isinstance(name, torch.device):
        return name
    name = (name or "auto").strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    kind = name.split(":")[0]
    if kind not in CHOICES:
        raise ConfigurationError(f"device must be one of {', '.join(CHOICES)} (or cuda:N), got {name!r}")
    if kind == "cuda" and not torch.cuda.is_available():
        built = "with CUDA " + torch.version.cuda if torch.version.cuda else "without CUDA"
        raise ConfigurationError(f"--device {name}: no CUDA GPU is available here (torch {torch.__version__}, built "
                                 f"{built}); use --device auto or cpu")
    if kind == "cuda" and ":" in name and int(name.split(":")[1]) >= torch.cuda.device_count():
        raise ConfigurationError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    if kind == "mps" and not _mps_available():
        raise ConfigurationError(f"--device {name}: Apple's MPS backend is not available here; use --device auto "
                                 f"or cpu")
    return torch.device(name)
