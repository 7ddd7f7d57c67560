"""What this CPU offers: vector instructions and the precisions they run natively.

Benchmarks state it beside every figure (the CPU can change between sessions), and
``--precision bf16`` checks it before any work.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

#: Flags in /proc/cpuinfo, from the widest vectors down; the first found names the ISA.
_ISA_FLAGS = (
    ("amx_bf16", "AMX (BF16)"),
    ("avx512_bf16", "AVX-512 with BF16"),
    ("avx512_vnni", "AVX-512 with VNNI"),
    ("avx512f", "AVX-512"),
    ("avx2", "AVX2"),
    ("sse4_2", "SSE4.2"),
    ("asimd", "NEON"),
)


@dataclass(frozen=True)
class CpuFeatures:
    """The CPU's model, cores usable here, flags of note and native precisions."""

    model: str
    cores: int
    isa: str
    flags: frozenset[str]
    mhz: float | None

    @property
    def precisions(self) -> tuple[str, ...]:
        """fp32 always; bf16 with AVX512_BF16 or AMX; int8 dot products with VNNI or AMX."""
        out = ["fp32"]
        if self.flags & {"avx512_bf16", "amx_bf16"}:
            out.append("bf16")
        if self.flags & {"avx512_vnni", "avx_vnni", "amx_int8"}:
            out.append("int8")
        return tuple(out)

    def peak_gflops(self, precision: str) -> float | None:
        """A nominal peak on the cores usable here: cores x clock x operations per cycle.

        fp32: 2 FMA units of the widest vector (AVX-512 16 lanes, AVX2 8) x 2 flops; bf16
        dot products and int8 VNNI do 2x and 4x as many per instruction. A ceiling to
        compare achieved rates with, not a measurement (Zen 4 runs 512-bit vectors as two
        halves, for one).
        """
        if self.mhz is None:
            return None
        lanes = 16 if "avx512f" in self.flags else 8 if "avx2" in self.flags else 4
        per_cycle = 2 * lanes * 2 * {"fp32": 1, "bf16": 2, "int8": 4}[precision]
        return self.cores * self.mhz / 1000 * per_cycle

    def line(self) -> str:
        clock = f", {self.mhz / 1000:.2f} GHz" if self.mhz else ""
        return f"{self.model}: {self.cores} cores{clock}, {self.isa}; native {', '.join(self.precisions)}"


@functools.lru_cache(maxsize=1)
def cpu_features() -> CpuFeatures:
    """This machine's CPU (Linux /proc/cpuinfo; elsewhere only the core count is known)."""
    model, flags, mhz = "unknown CPU", frozenset(), None
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                key, value = key.strip(), value.strip()
                if key == "model name" and model == "unknown CPU":
                    model = value
                elif key in ("flags", "Features") and not flags:
                    flags = frozenset(value.split())
                elif key == "cpu MHz" and mhz is None:
                    mhz = float(value)
    except OSError:
        pass
    isa = next((name for flag, name in _ISA_FLAGS if flag in flags), "unknown ISA")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return CpuFeatures(model, cores, isa, flags, mhz)
