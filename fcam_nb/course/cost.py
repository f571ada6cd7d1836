"""Cost estimates that decide what can run where (the dense CRF dominates a CPU step).

The exact CRF visits every pixel pair: ``N^2`` pairs per image at ``N = (input_size * scale)^2``
pixels. On 2 CPU cores the chunked torch product (``crf_ws_torch``) costs
``CPU_CRF_NS_PER_PAIR`` per pair at the paper's 224 px maps, so a batch of 32 costs
``cpu_crf_seconds_per_step`` for the CRF alone; its backward reuses the forward's product.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fcam_nb.config import RunConfig

# `python benchmarks/bench_crf.py --paper-map`, row "torch cpu 1 224x224" (2 CPU cores, quiet,
# torch 2.14.1, 2026-11-27: 15.3 s per map); an estimate for the refusal message, not a contract
CPU_CRF_NS_PER_PAIR = 6.1


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


def cpu_refusal(cfg: RunConfig, rehearse: str = "--rehearsal", allow: str = "--allow-cpu") -> str:
    """The message that stops the paper settings on a machine without CUDA; ``rehearse`` and
    ``allow`` name the caller's switches (CLI options, or the notebooks' variables)."""
    minutes = cpu_crf_seconds_per_step(cfg) / 60
    side = int(cfg.data.input_size * cfg.stage2.crf_scale)
    giga_pairs = crf_pairs_per_image(cfg.data.input_size, cfg.stage2.crf_scale) / 1e9
    return (
        f"No CUDA device: the paper settings would run on the CPU. The exact CRF alone at "
        f"{side}x{side} px costs about {minutes:.0f} min per stage-2 step of "
        f"{cfg.stage2.batch_size} images here ({giga_pairs:.1f} G pixel "
        f"pairs per image at ~{CPU_CRF_NS_PER_PAIR:.0f} ns per pair on 2 cores), on top of the "
        f"backbone. Run on a GPU (e.g. Colab), rehearse the path with {rehearse}, or set "
        f"{allow} to run anyway."
    )


CRF_FLOPS_PER_PAIR = 20  # 5 differences, 5 squares, 4 adds, exp, 2 FMAs (K = 2)


def forward_flops(module, *inputs) -> int:
    """FLOPs (2 per multiply-add) of one forward of ``module`` on ``inputs``, counted by
    ``torch.utils.flop_counter`` (convolutions, matmuls; element-wise ops are not counted)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(*inputs)
    return counter.get_total_flops()


def per_image_costs(backbone: str, input_size: int = 224, crf_scale: float = 1.0,
                    num_classes: int = 200) -> dict[str, float]:
    """Per-image work of each stage at ``input_size`` (FLOPs; backward counted as 2x forward):
    ``stage1_train`` (encoder forward + backward), ``eval`` (encoder forward), ``stage2_train``
    (frozen encoder forward + decoder forward and backward), ``stage2_eval`` and
    ``crf_pairs`` (pixel pairs of the exact CRF at ``crf_scale``)."""
    import torch

    from fcam_nb.models import build_classifier, build_decoder

    clf = build_classifier(backbone, num_classes).eval()
    decoder = build_decoder(clf.encoder).eval()
    x = torch.zeros(1, 3, input_size, input_size)
    encoder = forward_flops(clf, x)
    with torch.no_grad():
        feats = clf.encoder(x)
    decode = forward_flops(decoder, feats, (input_size, input_size))
    return {"encoder_fwd": encoder, "decoder_fwd": decode, "stage1_train": 3 * encoder,
            "eval": encoder, "stage2_train": encoder + 3 * decode, "stage2_eval": encoder + decode,
            "crf_pairs": crf_pairs_per_image(input_size, crf_scale)}
