"""Triton CRF kernel vs the exact torch path, on CPU tensors under TRITON_INTERPRET=1.

Collected only through tests/test_losses_crf.py, which starts a process with the flag set.
"""

import os

import pytest
import torch

if os.environ.get("TRITON_INTERPRET") != "1":
    pytest.skip("needs TRITON_INTERPRET=1 before triton is imported", allow_module_level=True)

from fcam_nb.losses.crf import crf_features, crf_ws_torch, dense_crf_loss  # noqa: E402
from fcam_nb.losses.crf_triton import crf_ws_triton  # noqa: E402


def _inputs(b, k, h, w, seed):
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (b, 3, h, w), generator=g).float()
    probs = torch.randn(b, k, h, w, generator=g).softmax(dim=1)
    return images, probs


@pytest.mark.parametrize("shape", [(1, 2, 8, 8), (2, 2, 7, 13), (3, 3, 5, 9), (2, 1, 11, 6)])
@pytest.mark.parametrize("blocks", [(16, 16), (32, 16)])
@pytest.mark.parametrize("reduction", ["tile", "deferred", "dot", "fma"])
def test_kernel_equals_torch(shape, blocks, reduction):
    b, k, h, w = shape
    if reduction == "fma" and k > 2:
        with pytest.raises(ValueError, match="'fma' takes K <= 2"):
            crf_ws_triton(torch.zeros(b, 5, h * w), torch.zeros(b, k, h * w), reduction="fma")
        return
    images, probs = _inputs(b, k, h, w, seed=h * w)
    feats = crf_features(images, 4.0, 15.0)
    flat = probs.reshape(b, k, -1)
    got = crf_ws_triton(feats, flat, block_m=blocks[0], block_n=blocks[1],
                        reduction=reduction)
    torch.testing.assert_close(got, crf_ws_torch(feats, flat), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_loss_and_gradients_equal_torch(scale):
    images, probs = _inputs(2, 2, 10, 10, seed=3)
    p1 = probs.clone().requires_grad_(True)
    p2 = probs.clone().requires_grad_(True)
    kw = {"sigma_xy": 6.0, "sigma_rgb": 15.0, "weight": 1.0, "scale_factor": scale}
    a = dense_crf_loss(images, p1, backend="triton", **kw)
    b = dense_crf_loss(images, p2, backend="torch", **kw)
    a.backward()
    b.backward()
    torch.testing.assert_close(a, b, rtol=1e-4, atol=0)
    torch.testing.assert_close(p1.grad, p2.grad, rtol=1e-4, atol=1e-7)
