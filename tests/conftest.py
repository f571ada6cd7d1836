"""Shared fixtures. ``device`` runs a test on the CPU and, where a GPU exists, on CUDA too, so
the GPU paths (the Triton CRF kernel, autocast, device-side sampling) are exercised there."""

import pytest
import torch

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def device(request) -> torch.device:
    """The device of a test. On CUDA, TF32 is switched off for the test: cuDNN's default TF32
    convolutions (Ampere and newer) move a CAM by ~5e-4 (seen on an H200), and these tests compare
    the code paths in fp32, not the GPU's rounding."""
    if request.param != "cuda":
        yield torch.device(request.param)
        return
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield torch.device("cuda")
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved
