"""The float precision the face models run in: bfloat16 where the processor computes it natively, float32 elsewhere.

Elsewhere oneDNN emulates bfloat16 with float32 instructions, which is slower than float32 itself.
"""

import logging
from dataclasses import dataclass
from pathlib import Path

import torch

logger = logging.getLogger(__name__)

# Flags in /proc/cpuinfo of processors with bfloat16 instructions: Intel's AMX, and AVX-512 BF16 (Intel Cooper Lake
# and later, AMD Zen 4 and later).
BFLOAT16_FLAGS = ("amx_bf16", "avx512_bf16")
CPUINFO = Path("/proc/cpuinfo")
CHOICES = ("auto", "float32", "bfloat16")


@dataclass(frozen=True)
class Precision:
    """The dtype the embedder runs in, and why it was chosen (for the log line)."""

    dtype: torch.dtype
    reason: str

    @property
    def name(self) -> str:
        return str(self.dtype).removeprefix("torch.")


def cpu_flags() -> frozenset[str]:
    """The processor's feature flags from /proc/cpuinfo; without it (not Linux), the one torch can tell."""
    try:
        lines = CPUINFO.read_text().splitlines()
    except OSError:
        return frozenset({"avx512_bf16"}) if torch.cpu._is_avx512_bf16_supported() else frozenset()
    return frozenset(flag for line in lines if line.startswith("flags") for flag in line.partition(":")[2].split())


def choose(asked: str, flags: frozenset[str]) -> Precision:
    """What REVSEARCH_FACE_PRECISION asks for (auto: bfloat16 where the processor has it), float32 where it has not."""
    if asked not in CHOICES:
        raise ValueError(f"face precision {asked!r}: choose one of {', '.join(CHOICES)}")
    native = [flag for flag in BFLOAT16_FLAGS if flag in flags]
    if asked == "float32":
        return Precision(torch.float32, "REVSEARCH_FACE_PRECISION=float32")
    if native:
        return Precision(torch.bfloat16, f"cpu has {native[0]}")
    if asked == "bfloat16":
        logger.warning(
            "REVSEARCH_FACE_PRECISION=bfloat16, but this processor has neither %s: the face models run in float32"
            " (emulated bfloat16 would be slower); set it to auto or float32 to silence this",
            " nor ".join(BFLOAT16_FLAGS),
        )
    return Precision(torch.float32, f"cpu has neither {' nor '.join(BFLOAT16_FLAGS)}")


class InBfloat16(torch.nn.Module):
    """A network run under bfloat16 autocast that hands back float32 outputs, so that the arithmetic around it
    (MTCNN's box coordinates, which bfloat16 would round to several pixels, and NMS) stays in float32."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, batch: torch.Tensor) -> tuple[torch.Tensor, ...]:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            outputs = self.net(batch)
        return tuple(output.float() for output in outputs)
