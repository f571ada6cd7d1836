"""Shared fixtures. ``device`` runs a test on the CPU and, where a GPU exists, on CUDA too, so
the GPU paths (the Triton CRF kernel, autocast, device-side sampling) are exercised there."""

import pytest
import torch

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def device(request) -> torch.device:
    return torch.device(request.param)
