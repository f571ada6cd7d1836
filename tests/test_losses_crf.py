"""Dense CRF loss: torch path vs brute force, Triton kernel (interpreter) vs torch, gradients."""

import os
import subprocess
import sys

import pytest
import torch

from fcam_nb.losses import dense_crf_loss, dense_crf_loss_reference
from fcam_nb.losses.crf import crf_features, crf_ws_torch


def _inputs(b=2, k=2, h=7, w=9, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (b, 3, h, w), generator=g).to(dtype)
    probs = torch.randn(b, k, h, w, generator=g, dtype=dtype).softmax(dim=1)
    return images, probs


def test_torch_path_equals_brute_force_values_and_grads():
    images, probs = _inputs(dtype=torch.float64)
    p1 = probs.clone().requires_grad_(True)
    p2 = probs.clone().requires_grad_(True)
    kw = {"sigma_xy": 3.0, "sigma_rgb": 40.0, "weight": 1.0}
    a = dense_crf_loss(images, p1, backend="torch", **kw)
    b = dense_crf_loss_reference(images, p2, **kw)
    a.backward()
    b.backward()
    torch.testing.assert_close(a, b, rtol=1e-12, atol=0)
    torch.testing.assert_close(p1.grad, p2.grad, rtol=1e-10, atol=1e-14)


def test_gradient_is_minus_two_ws_over_b():
    images, probs = _inputs(b=3)
    p = probs.clone().requires_grad_(True)
    dense_crf_loss(images, p, sigma_xy=5.0, sigma_rgb=15.0, weight=2.0, backend="torch").backward()
    feats = crf_features(images, 5.0, 15.0)
    ws = crf_ws_torch(feats, probs.reshape(3, 2, -1)).reshape(probs.shape)
    torch.testing.assert_close(p.grad, -2 * 2.0 * ws / 3)


def test_gradcheck_float64():
    images, probs = _inputs(b=2, k=3, h=4, w=5, dtype=torch.float64)
    probs.requires_grad_(True)
    fn = lambda p: dense_crf_loss(images, p, sigma_xy=2.0, sigma_rgb=50.0, weight=1.0,
                                  backend="torch")
    assert torch.autograd.gradcheck(fn, (probs,), eps=1e-6, atol=1e-6)


def test_self_term_and_defaults_scale():
    # one pixel: W = [[1]], loss = -weight * (s0^2 + s1^2)
    images = torch.zeros(1, 3, 1, 1)
    probs = torch.tensor([0.25, 0.75]).view(1, 2, 1, 1)
    loss = dense_crf_loss(images, probs, weight=1.0, backend="torch")
    assert loss.item() == pytest.approx(-(0.25**2 + 0.75**2))


def test_scale_factor_matches_manual_downsampling():
    images, probs = _inputs(h=8, w=8)
    got = dense_crf_loss(images, probs, sigma_xy=10.0, scale_factor=0.5, weight=1.0,
                         backend="torch")
    small_i = torch.nn.functional.interpolate(images, scale_factor=0.5, mode="nearest")
    small_p = torch.nn.functional.interpolate(probs, scale_factor=0.5, mode="bilinear",
                                              align_corners=False)
    ref = dense_crf_loss_reference(small_i, small_p, sigma_xy=5.0, weight=1.0)
    torch.testing.assert_close(got, ref)


def test_bad_shapes():
    images, probs = _inputs()
    with pytest.raises(ValueError, match="share"):
        dense_crf_loss(images[:1], probs)
    with pytest.raises(ValueError, match="RGB"):
        dense_crf_loss(images[:, :2], probs)


def test_triton_kernel_under_interpreter():
    """Runs tests/triton_interp_cases.py in a fresh process with TRITON_INTERPRET=1 (the flag
    must be set before triton is first imported)."""
    pytest.importorskip("triton")
    env = dict(os.environ, TRITON_INTERPRET="1")
    here = os.path.dirname(__file__)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         os.path.join(here, "triton_interp_cases.py")],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout and "failed" not in proc.stdout


def test_triton_backend_refuses_cpu_without_interpreter():
    if os.environ.get("TRITON_INTERPRET") == "1":
        pytest.skip("interpreter enabled globally")
    images, probs = _inputs()
    with pytest.raises(RuntimeError, match="TRITON_INTERPRET"):
        dense_crf_loss(images, probs, backend="triton")


def test_auto_backend_on_each_device_matches_the_cpu_reference(device):
    """On CUDA ``auto`` is the Triton kernel; on CPU the chunked torch path."""
    images, probs = _inputs(h=12, w=10)
    ref = dense_crf_loss_reference(images.double(), probs.double(), sigma_xy=6.0, weight=1.0)
    p = probs.to(device).requires_grad_(True)
    got = dense_crf_loss(images.to(device), p, sigma_xy=6.0, weight=1.0)
    torch.testing.assert_close(got.double().cpu(), ref, rtol=1e-5, atol=1e-5)
    got.backward()
    ws = crf_ws_torch(crf_features(images.double(), 6.0, 15.0), probs.double().reshape(2, 2, -1))
    torch.testing.assert_close(p.grad.double().cpu(), (-ws).double().reshape(probs.shape), rtol=1e-5,
                               atol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="the compiled kernel needs CUDA")
@pytest.mark.parametrize("k, h, w", [(2, 37, 29), (3, 16, 70)])
@pytest.mark.parametrize("reduction", ["tile", "deferred", "dot", "fma"])
def test_compiled_triton_kernel_matches_float64_over_several_tiles(k, h, w, reduction):
    """N = 1073 and 1120 pixels: several 64-pixel tiles with a ragged last one; K = 2 and 3."""
    from fcam_nb.losses.crf_triton import crf_ws_triton

    if reduction == "fma" and k > 2:
        pytest.skip("fma takes K <= 2 (the refusal is tested under the interpreter)")
    images, probs = _inputs(b=3, k=k, h=h, w=w, seed=1)
    feats = crf_features(images.double(), 10.0, 15.0)
    s = probs.double().reshape(3, k, -1)
    expected = crf_ws_torch(feats, s).double()
    got = crf_ws_triton(feats.float().cuda(), s.float().cuda(), reduction=reduction)
    torch.testing.assert_close(got.double().cpu(), expected, rtol=1e-5, atol=1e-4)
    p = probs.cuda().requires_grad_(True)
    dense_crf_loss(images.cuda(), p, sigma_xy=10.0, weight=1.0).backward()
    torch.testing.assert_close(p.grad.double().cpu(), (-2.0 / 3) * expected.reshape(probs.shape),
                               rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("capability, k, expected", [((7, 5), 2, "fma"), ((9, 0), 1, "fma"),
                                                     ((7, 5), 3, "deferred"), ((8, 0), 3, "dot"),
                                                     ((9, 0), 3, "dot")])
def test_the_default_reduction_follows_k_and_the_tensor_cores(monkeypatch, capability, k,
                                                               expected):
    """F-CAM's two channels take the FMA kernel everywhere; more channels take tensor cores
    only where they take TF32."""
    from fcam_nb.losses.crf_triton import default_reduction

    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    assert default_reduction(torch.device("cuda"), k) == expected
    assert default_reduction(torch.device("cpu"), k) == ("fma" if k <= 2 else "dot")


def test_an_unknown_reduction_is_named():
    from fcam_nb.losses.crf_triton import crf_ws_triton

    with pytest.raises(ValueError, match="reduction must be one of"):
        crf_ws_triton(torch.zeros(1, 5, 4), torch.zeros(1, 2, 4), reduction="fast")


def test_reduction_override_is_scoped_and_checked():
    from fcam_nb.losses import crf_triton

    with pytest.raises(ValueError, match="reduction must be one of"):
        with crf_triton.reduction_override("fast"):
            pass
    assert crf_triton._REDUCTION.get() is None
    with crf_triton.reduction_override("tile"):
        assert crf_triton._REDUCTION.get() == "tile"
        with crf_triton.reduction_override(None):
            assert crf_triton._REDUCTION.get() is None
        assert crf_triton._REDUCTION.get() == "tile"
    assert crf_triton._REDUCTION.get() is None
