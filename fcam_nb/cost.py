"""Cost estimates that decide what can run where (the dense CRF dominates a CPU step).

The exact CRF visits every pixel pair: ``N^2`` pairs per image at ``N = (input_size * scale)^2``
pixels. On 2 CPU cores the chunked torch product costs about 14 ns per pair
(``benchmarks/bench_crf.py``: 13.9 ns at 32x32 maps), so one 224 px map costs ~35 s and a
batch of 32 ~19 min for the CRF alone (measured end to end: ~44 s per 224 px map, forward and
backward, on 2 quiet cores).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fcam_nb.config import RunConfig

CPU_CRF_NS_PER_PAIR = 13.9  # measured on 2 CPU cores, benchmarks/bench_crf.py


def crf_pairs_per_image(input_size: int, scale: float) -> float:
    """Pixel pairs the exact CRF visits per image: (input_size * scale)^4."""
    side = int(input_size * scale)
    return float(side * side) ** 2


def cpu_crf_seconds_per_step(cfg: RunConfig) -> float:
    """Estimated CPU seconds of the exact CRF for one stage-2 batch of ``cfg`` (0 without CRF)."""
    s2 = cfg.stage2
    if not s2.use_crf:
        return 0.0
    pairs = crf_pairs_per_image(cfg.data.input_size, s2.crf_scale)
    return pairs * CPU_CRF_NS_PER_PAIR * 1e-9 * s2.batch_size


def cpu_refusal(cfg: RunConfig) -> str:
    """The message that stops the paper settings on a machine without CUDA."""
    minutes = cpu_crf_seconds_per_step(cfg) / 60
    side = int(cfg.data.input_size * cfg.stage2.crf_scale)
    giga_pairs = crf_pairs_per_image(cfg.data.input_size, cfg.stage2.crf_scale) / 1e9
    return (
        f"No CUDA device: the paper settings would run on the CPU. The exact CRF alone at "
        f"{side}x{side} px costs about {minutes:.0f} min per stage-2 step of "
        f"{cfg.stage2.batch_size} images here ({giga_pairs:.1f} G pixel "
        f"pairs per image at ~{CPU_CRF_NS_PER_PAIR:.0f} ns per pair on 2 cores), on top of the "
        f"backbone. Run on a GPU (e.g. Colab), rehearse the path with --rehearsal, or pass "
        f"--allow-cpu to run anyway."
    )
