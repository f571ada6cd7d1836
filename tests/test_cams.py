import numpy as np
import pytest
import torch
from torchcam import methods as tcm

from fcam_nb.cams import (
    CAM,
    GradCAM,
    GradCAMpp,
    LayerCAM,
    ScoreCAM,
    SmoothGradCAMpp,
    XGradCAM,
    build_cam_method,
    normalize_maps,
    upsample_maps,
)
from fcam_nb.models import build_classifier


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = build_classifier("tiny", num_classes=5).eval()
    # random-but-not-degenerate BN statistics
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.2, 0.2)
            mod.running_var.uniform_(0.5, 1.5)
    with torch.no_grad():
        m.fc.weight.mul_(50)  # large gradients: the peers' eps terms become negligible
    return m


@pytest.fixture(scope="module")
def images():
    return torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))


TARGETS = torch.tensor([0, 3, 1])


def _torchcam(cls, model, images, targets, layer=None, **kw):
    layer = layer if layer is not None else model.cam_layer
    with cls(model, target_layer=layer, **kw) as extractor:
        scores = model(images)
        return extractor(targets.tolist(), scores, normalized=True)[0]


@pytest.mark.parametrize(
    "ours, theirs",
    [(CAM, tcm.CAM), (GradCAM, tcm.GradCAM), (XGradCAM, tcm.XGradCAM), (LayerCAM, tcm.LayerCAM)],
)
def test_matches_torchcam(model, images, ours, theirs):
    if theirs is tcm.CAM:
        expected = _torchcam(theirs, model, images, TARGETS, fc_layer=model.fc)
        got = ours(model)(images, TARGETS)
    else:  # an inner layer: gradients vary over space (at the GAP layer they are constant)
        layer = model.encoder.stage3
        expected = _torchcam(theirs, model, images, TARGETS, layer=layer)
        got = ours(model, target_layer=layer)(images, TARGETS)
    np.testing.assert_allclose(normalize_maps(got), expected, atol=1e-4)


def test_scorecam_matches_torchcam(model, images):
    expected = _torchcam(tcm.ScoreCAM, model, images, TARGETS)
    got = ScoreCAM(model)(images, TARGETS)
    np.testing.assert_allclose(normalize_maps(got), expected, atol=1e-4)


def _peer_gradcampp(model, images, layer):
    from pytorch_grad_cam import GradCAMPlusPlus
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    with GradCAMPlusPlus(model=model, target_layers=[layer]) as peer:
        maps = peer(images, targets=[ClassifierOutputTarget(int(t)) for t in TARGETS])
    model.zero_grad(set_to_none=True)  # the peer calls backward()
    return maps


def _formula_gradcampp(model, images, layer_index, eps=0.0):
    with torch.enable_grad():
        feats, logits = model.forward_features(images)
        a = feats[layer_index]
        g = torch.autograd.grad(logits.gather(1, TARGETS[:, None]).sum(), a)[0]
    a, g = a.detach(), g.detach()
    alpha = g**2 / (2 * g**2 + a.sum(dim=(2, 3), keepdim=True) * g**3 + eps)
    alpha = torch.where(g != 0, alpha, 0)
    w = (alpha * torch.relu(g)).sum(dim=(2, 3))
    return torch.relu(torch.einsum("bc,bchw->bhw", w, a))


@pytest.mark.parametrize("inner", [False, True])
def test_gradcampp_matches_pytorch_grad_cam(model, images, inner):
    """pytorch-grad-cam implements the paper's alpha plus eps = 1e-6 in its denominator; it
    ReLUs, min-maxes, cv2-resizes and min-maxes again. The same formula with that eps, pushed
    through the same post-processing, equals the peer; ours (no eps) is checked against the
    exact formula in float64 below and agrees with the peer to ~1e-2 (channels whose
    denominator 2 + sum(A) g is near 0 are sensitive to the eps)."""
    import cv2

    layer, index = (model.encoder.stage3, 2) if inner else (model.cam_layer, -1)
    peer = _peer_gradcampp(model, images, layer)
    with_eps = normalize_maps(_formula_gradcampp(model, images, index, eps=1e-6)).numpy()
    ours = normalize_maps(GradCAMpp(model, target_layer=layer)(images, TARGETS)).numpy()
    for i in range(len(TARGETS)):
        for maps, atol in ((with_eps, 1e-4), (ours, 2e-2)):
            up = cv2.resize(maps[i], (32, 32))
            up = (up - up.min()) / (1e-7 + (up - up.min()).max())
            np.testing.assert_allclose(up, peer[i], atol=atol)


def test_gradcampp_formula_float64(model, images):
    layer = model.encoder.stage3
    got = GradCAMpp(model.double(), target_layer=layer)(images.double(), TARGETS)
    with torch.enable_grad():
        feats, logits = model.forward_features(images.double())
        a = feats[2]
        g = torch.autograd.grad(logits.gather(1, TARGETS[:, None]).sum(), a)[0]
    model.float()
    a, g = a.detach(), g.detach()
    alpha = g**2 / (2 * g**2 + a.sum(dim=(2, 3), keepdim=True) * g**3)
    alpha = torch.where(g != 0, alpha, 0)
    w = (alpha * torch.relu(g)).sum(dim=(2, 3))
    ref = torch.relu(torch.einsum("bc,bchw->bhw", w, a))
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12)


def test_torchcam_gradcampp_is_the_alpha_g2_variant(model, images):
    """Documented difference: torchcam's GradCAM++ reduces to alpha = g^2 (its division is lost)."""
    layer = model.encoder.stage3
    peer = _torchcam(tcm.GradCAMpp, model, images, TARGETS, layer=layer)
    with torch.enable_grad():
        feats, logits = model.forward_features(images)
        g = torch.autograd.grad(logits.gather(1, TARGETS[:, None]).sum(), feats[2])[0]
    a = feats[2].detach()
    w = (g**2 * torch.relu(g)).sum(dim=(2, 3))
    buggy = normalize_maps(torch.relu(torch.einsum("bc,bchw->bhw", w, a)))
    np.testing.assert_allclose(peer, buggy, atol=1e-3)  # near-ties at the max after min-max
    ours = normalize_maps(GradCAMpp(model, target_layer=layer)(images, TARGETS))
    assert (ours - buggy).abs().max() > 2e-2  # the paper's alpha gives a different map


def test_smooth_gradcampp_formula(model, images):
    gen = torch.Generator().manual_seed(5)
    method = SmoothGradCAMpp(model, n_samples=3, sigma=0.2, generator=gen)
    got = method(images, TARGETS)
    gen.manual_seed(5)
    noises = [0.2 * torch.randn(images.shape, generator=gen) for _ in range(3)]
    feats, _ = model.forward_features(images)
    a = feats[-1].detach()
    gs = []
    for z in noises:
        with torch.enable_grad():
            f, lg = model.forward_features(images + z)
            gs.append(torch.autograd.grad(lg.gather(1, TARGETS[:, None]).sum(), f[-1])[0])
    d1 = sum(gs) / 3
    d2 = sum(g**2 for g in gs) / 3
    d3 = sum(g**3 for g in gs) / 3
    alpha = d2 / (2 * d2 + a.sum(dim=(2, 3), keepdim=True) * d3)
    alpha = torch.where(d2 != 0, alpha, 0)
    w = (alpha * torch.relu(d1)).sum(dim=(2, 3))
    ref = torch.relu(torch.einsum("bc,bchw->bhw", w, a))
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-6)


def test_smooth_with_zero_noise_equals_gradcampp(model, images):
    got = SmoothGradCAMpp(model, n_samples=2, sigma=0.0)(images, TARGETS)
    np.testing.assert_allclose(got, GradCAMpp(model)(images, TARGETS), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", ["cam", "gradcam", "gradcampp", "smoothgradcampp", "xgradcam",
                                  "layercam"])
def test_api_batch_eval_no_param_grad_hooks_removed(model, images, name):
    model.zero_grad(set_to_none=True)
    method = build_cam_method(name, model)
    maps = method(images, TARGETS)
    assert maps.shape == (3, 8, 8)  # tiny net: stride 4
    assert all(p.grad is None for p in model.parameters())
    assert not model.cam_layer._forward_hooks
    assert not model.training
    # per-sample targets: batch result equals one-by-one results
    for i in range(3):
        if name == "smoothgradcampp":
            continue
        single = method(images[i : i + 1], TARGETS[i : i + 1])
        np.testing.assert_allclose(single[0], maps[i], rtol=1e-4, atol=1e-6)


def test_hook_removed_on_error(model):
    with pytest.raises(ValueError, match="expected input.*to have 3 channels"):
        GradCAM(model)(torch.randn(1, 2, 32, 32), torch.tensor([0]))  # wrong channel count
    assert not model.cam_layer._forward_hooks


def test_bad_shapes(model, images):
    with pytest.raises(ValueError, match="targets"):
        GradCAM(model)(images, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="images"):
        GradCAM(model)(images[0], torch.tensor([0]))
    with pytest.raises(ValueError, match="unknown CAM"):
        build_cam_method("nope", model)


def test_no_memory_growth(model, images):
    import gc

    method = GradCAMpp(model)
    method(images, TARGETS)
    gc.collect()
    before = len([o for o in gc.get_objects() if torch.is_tensor(o)])
    for _ in range(100):
        method(images, TARGETS)
    gc.collect()
    after = len([o for o in gc.get_objects() if torch.is_tensor(o)])
    assert after - before <= 2


def test_normalize_and_upsample():
    maps = torch.tensor([[[0.0, 2.0], [4.0, 8.0]], [[3.0, 3.0], [3.0, 3.0]]])
    out = normalize_maps(maps)
    np.testing.assert_allclose(out[0], [[0, 0.25], [0.5, 1.0]])
    assert (out[1] == 0).all()  # constant map -> zeros
    up = upsample_maps(maps, 8)
    assert up.shape == (2, 8, 8) and up.min() >= 0 and up.max() <= 1
    with pytest.raises(ValueError, match="NaN"):
        normalize_maps(torch.full((1, 2, 2), float("nan")))


def test_gradient_methods_work_on_a_frozen_classifier(images):
    m = build_classifier("tiny", num_classes=5).eval()
    ref = {n: build_cam_method(n, m)(images, TARGETS) for n in ("gradcam", "layercam")}
    for p in m.parameters():
        p.requires_grad_(False)
    for name, maps in ref.items():
        torch.testing.assert_close(build_cam_method(name, m)(images, TARGETS), maps)


@pytest.mark.parametrize("name", ["cam", "gradcam", "gradcampp", "smoothgradcampp", "xgradcam",
                                  "layercam", "scorecam"])
def test_from_features_equals_the_full_path(model, images, name):
    """Stage 2 reuses the encoder's forward: same maps and logits as calling the method."""
    kw = {"generator": torch.Generator().manual_seed(0)} if name == "smoothgradcampp" else {}
    full = build_cam_method(name, model, **kw)
    expected = full(images, TARGETS)
    with torch.no_grad():
        feats, _ = model.forward_features(images)
    if name == "smoothgradcampp":
        kw["generator"].manual_seed(0)
    shared = build_cam_method(name, model, **kw)
    got = shared.from_features(images, feats[-1], model.pool_and_classify, TARGETS)
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
    torch.testing.assert_close(shared.last_logits, full.last_logits, rtol=0, atol=0)
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("name", ["cam", "gradcam", "gradcampp", "xgradcam", "layercam"])
def test_maps_on_each_device_match_the_cpu(model, images, name, device):
    ref = build_cam_method(name, model)(images, TARGETS)
    moved = build_classifier("tiny", num_classes=5).to(device).eval()
    moved.load_state_dict(model.state_dict())
    got = build_cam_method(name, moved).full_resolution(images.to(device), TARGETS.to(device))
    assert got.device.type == device.type and got.shape == (3, 32, 32)
    torch.testing.assert_close(got.cpu(), upsample_maps(ref, (32, 32)), rtol=1e-4, atol=1e-4)


def test_base_class_combines_the_weights(model, images):
    """A new method only gives weights: CAM's weights with the base's ReLU = ReLU(CAM)."""

    class ReLUCAM(CAM):
        relu = True

    torch.testing.assert_close(ReLUCAM(model)(images, TARGETS),
                               torch.relu(CAM(model)(images, TARGETS)), rtol=0, atol=0)


@pytest.mark.parametrize("name", ["cam", "gradcam", "layercam"])
def test_targets_are_checked(model, images, name):
    method = build_cam_method(name, model)
    with pytest.raises(ValueError, match=r"targets must lie in \[0, 5\).*\[-1\]"):
        method(images, -1)  # would silently explain class K-1
    with pytest.raises(ValueError, match=r"\[0, 5\).*\[5\]"):
        method(images, torch.tensor([0, 5, 1]))
    with pytest.raises(TypeError, match="integer class indices, got dtype torch.float32"):
        method(images, torch.tensor([0.0, 2.7, 1.0]))  # would be truncated to 2
    with pytest.raises(TypeError, match="got float"):
        method(images, 2.7)


@pytest.mark.parametrize("name", ["gradcam", "gradcampp", "smoothgradcampp", "scorecam"])
def test_a_model_in_train_mode_keeps_its_buffers_and_mode(images, name):
    torch.manual_seed(0)
    net = build_classifier("tiny", num_classes=5).train()
    first_bn = next(m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d))  # mixed modes
    first_bn.eval()
    buffers = {k: v.clone() for k, v in net.state_dict().items()}
    method = build_cam_method(name, net)
    maps = method(images, TARGETS)
    for k, v in net.state_dict().items():
        torch.testing.assert_close(v, buffers[k], rtol=0, atol=0)
    assert net.training and not first_bn.training  # each module's own mode back
    net.eval()
    torch.testing.assert_close(method(images, TARGETS), maps)  # the eval-mode maps


def test_normalize_rejects_inf():
    with pytest.raises(ValueError, match="inf"):
        normalize_maps(torch.tensor([[[0.0, float("inf")], [1.0, 2.0]]]))


def test_gradient_methods_explain_inference_mode_and_device_mismatch(model, images):
    with torch.inference_mode():
        with pytest.raises(RuntimeError, match="gradcam needs gradients.*inference_mode"):
            GradCAM(model)(images, TARGETS)
        inference_images = images.clone()
        cam_maps = build_cam_method("cam", model)(inference_images, TARGETS)  # CAM: no gradient
    torch.testing.assert_close(GradCAM(model)(inference_images, TARGETS),
                               GradCAM(model)(images, TARGETS))  # an inference tensor as input
    assert cam_maps.shape == (3, 8, 8)
    with pytest.raises(ValueError, match="images are on meta but the model is on cpu"):
        GradCAM(model)(images.to("meta"), TARGETS)


def test_display_names_are_the_papers_spellings_with_the_fcam_suffix_kept():
    from fcam_nb.cams import display_name

    assert display_name("gradcampp") == "GradCAM++"
    assert display_name("smoothgradcampp + F-CAM") == "Smooth-GradCAM++ + F-CAM"
    assert display_name("centre prior") == "centre prior"


def test_one_pass_equals_each_method_alone(model, images):
    from fcam_nb.cams import maps_from_one_pass

    names = ["cam", "gradcam", "gradcampp", "smoothgradcampp", "xgradcam", "layercam"]
    gen = lambda: torch.Generator().manual_seed(7)  # noqa: E731
    kw = {"smoothgradcampp": {"generator": gen()}}
    together = maps_from_one_pass([build_cam_method(n, model, **kw.get(n, {})) for n in names],
                                  images, TARGETS)
    kw = {"smoothgradcampp": {"generator": gen()}}
    for name, got in zip(names, together, strict=True):
        alone = build_cam_method(name, model, **kw.get(name, {}))(images, TARGETS)
        assert torch.equal(got, alone), name  # bit-identical, not merely close
    other = build_classifier("tiny", num_classes=5)
    with pytest.raises(ValueError, match="same model"):
        maps_from_one_pass([build_cam_method("cam", model), build_cam_method("cam", other)], images)


def test_maps_are_normalized_at_low_resolution_then_upsampled():
    """The official order (core.py:187-189, then train_wsol.py:243-247 / inference_wsol.py:
    213-216): min-max on the low-res map, then bilinear; the max then falls between grid points."""
    low = torch.tensor([[[0.0, 2.0, 1.0], [4.0, 10.0, 3.0], [1.0, 2.0, 2.0]]])  # max inside
    up = upsample_maps(low, 12)
    expected = torch.nn.functional.interpolate((low / 10)[:, None], size=(12, 12),
                                               mode="bilinear", align_corners=False)[:, 0]
    torch.testing.assert_close(up, expected, rtol=0, atol=0)
    assert 0.8 < up.max().item() < 1.0 and up.min().item() == 0.0  # 0 at the corner pixel
    flat = upsample_maps(torch.full((1, 3, 3), 5.0), 6)  # a constant map gives zeros
    assert (flat == 0).all()
    assert upsample_maps(torch.rand(2, 5, 5) * 3, 17).max() <= 1  # clamped against rounding


def test_smooth_gradcampp_official_activations_option(model, images):
    """activations="last_noisy": the map combines the weights with the last noisy sample's
    activations, as the official code does in effect (gradcam.py:309-316, core.py:181)."""
    gen = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    clean = SmoothGradCAMpp(model, n_samples=2, generator=gen())(images, TARGETS)
    last = SmoothGradCAMpp(model, n_samples=2, generator=gen(), activations="last_noisy")
    got = last(images, TARGETS)
    assert not torch.allclose(got, clean)
    # by hand: the same weights, the activations of the second noisy input
    g = gen()
    noises = [0.3 * torch.randn(images.shape, generator=g) for _ in range(2)]
    with torch.no_grad():
        feats = model.encoder(images + noises[1])[-1]
    ref = SmoothGradCAMpp(model, n_samples=2, generator=gen())
    acts = model.encoder(images)[-1].detach()
    grads = []
    for n in noises:
        a = model.encoder(images + n)[-1].detach().requires_grad_(True)
        score = model.pool_and_classify(a).gather(1, TARGETS[:, None]).sum()
        grads.append(torch.autograd.grad(score, a)[0])
    from fcam_nb.cams.methods import _gradcampp_weights

    g1, g2, g3 = (sum(gr**p for gr in grads) / 2 for p in (1, 2, 3))
    weights = _gradcampp_weights(acts, g1, g2, g3)
    expected = torch.relu(torch.einsum("bc,bchw->bhw", weights, feats))
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    assert ref.activations == "clean"
    with pytest.raises(ValueError, match="activations must be one of"):
        SmoothGradCAMpp(model, activations="noisy")


def test_inputs_the_model_cannot_take_are_named(model, images):
    with pytest.raises(ValueError, match="images are torch.float16 but the model's weights are "
                                         "torch.float32"):
        CAM(model)(images.half(), TARGETS)
    with pytest.raises(ValueError, match="torch.float64"):
        GradCAM(model)(images.double(), TARGETS)
    with pytest.raises(ValueError, match=r"cannot run on images of shape \(3, 3, 2, 2\)"):
        GradCAM(model)(images[..., :2, :2], TARGETS)


def test_normalize_survives_a_range_that_overflows_float32():
    maps = torch.tensor([[[-3e38, 0.0], [1e38, 3e38]]])
    out = normalize_maps(maps)
    assert torch.isfinite(out).all() and out.min() == 0 and out.max() == 1
    assert out[0, 0, 1].item() == pytest.approx(0.5)


def test_a_cam_method_name_is_registered_once():
    from fcam_nb.cams.methods import BASELINES, METHODS, CAMMethod, display_name, register_cam_method

    with pytest.raises(ValueError, match="already registered"):
        @register_cam_method
        class Impostor(CAMMethod):
            name = "cam"
    with pytest.raises(ValueError, match="needs a `name`"):
        register_cam_method(type("Nameless", (CAMMethod,), {}))
    assert METHODS["cam"].__name__ == "CAM"
    assert BASELINES == ("cam", "gradcam", "gradcampp", "smoothgradcampp", "xgradcam", "layercam")
    assert display_name("smoothgradcampp + F-CAM") == "Smooth-GradCAM++ + F-CAM"
    assert display_name("unknown") == "unknown"
