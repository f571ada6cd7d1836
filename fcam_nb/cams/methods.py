"""Batched low-resolution CAM methods with one API: ``method(model)(images, targets) -> (B, h, w)``.

* CAM (Zhou et al. 2016): ``sum_k w_ck A_k`` with the linear layer's weights, no ReLU.
* GradCAM (Selvaraju et al. 2017): ``ReLU(sum_k mean(g_k) A_k)``, ``g = dy_c / dA``.
* GradCAM++ (Chattopadhay et al. 2018): weights ``sum_ij alpha_ij ReLU(g_ij)`` with the paper's
  ``alpha = g^2 / (2 g^2 + sum_ab(A_ab) g^3)`` (0 where g = 0). The F-CAM research code and
  torchcam use ``alpha = g^2`` in effect (an in-place division on a masked copy that never lands);
  we follow the paper, like pytorch-grad-cam.
* Smooth-GradCAM++ (Omeiza et al. 2019): GradCAM++ with g, g^2, g^3 averaged over ``n`` noisy
  copies of the (normalized) input, noise N(0, sigma^2); activations from the clean input.
* XGradCAM (Fu et al. 2020): ``ReLU(sum_k w_k A_k)``, ``w_k = sum(g_k A_k) / sum(A_k)``.
* LayerCAM (Jiang et al. 2021): ``ReLU(sum_k ReLU(g_k) A_k)``.
* ScoreCAM (Wang et al. 2020): the slow reference; ``ReLU(sum_k w_k A_k)`` with
  ``w = softmax_k(y_c(x * H_k) - y_c(x))`` (increase of confidence), ``H_k`` the min-max
  normalized activation upsampled to the input (as torchcam).

Gradients come from ``torch.autograd.grad`` on the hooked activation: parameters' ``.grad`` are
never touched and the hook is removed when the call returns (even on error). The model runs in
eval mode for the call and gets its own mode back (a model left in train mode would otherwise
have its BatchNorm statistics moved by every map, and its maps would depend on the batch).
Targets are one class index per sample, integers in ``[0, K)``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from fcam_nb.checks import check_maps
from fcam_nb.registry import add_entry


class _Hook:
    """Context manager capturing a module's output (kept in the autograd graph)."""

    def __init__(self, module: nn.Module) -> None:
        self.module = module
        self.output: torch.Tensor | None = None
        self.handle = None

    def _save(self, _module, _inputs, output) -> None:
        self.output = output

    def __enter__(self) -> _Hook:
        self.handle = self.module.register_forward_hook(self._save)
        return self

    def __exit__(self, *exc) -> None:
        self.handle.remove()
        self.output = None


def _check_inputs(images: torch.Tensor, targets: torch.Tensor | int | None) -> None:
    if not torch.is_tensor(images) or images.ndim != 4:
        shape = tuple(images.shape) if torch.is_tensor(images) else type(images).__name__
        raise ValueError(f"images must be a (B, C, H, W) tensor, got {shape}")
    if targets is None:
        return
    if isinstance(targets, bool) or not isinstance(targets, int | torch.Tensor):
        raise TypeError(f"targets must be an int or an integer tensor of class indices, got "
                        f"{type(targets).__name__}")
    if torch.is_tensor(targets):
        if targets.dtype.is_floating_point or targets.dtype.is_complex or targets.dtype == torch.bool:
            raise TypeError(f"targets must hold integer class indices, got dtype {targets.dtype}")
        if targets.shape != (images.shape[0],):
            raise ValueError(f"targets must be (B,) = ({images.shape[0]},), got "
                             f"{tuple(targets.shape)}")


def _check_range(tgt: torch.Tensor, num_classes: int) -> None:
    """Targets within ``[0, K)`` (one host sync per call, not per sample)."""
    bad = (tgt < 0) | (tgt >= num_classes)
    if bad.any():
        raise ValueError(f"targets must lie in [0, {num_classes}) (the model's classes), got "
                         f"{tgt[bad].unique().tolist()}")


def _model_device(model: nn.Module) -> torch.device | None:
    param = next(model.parameters(), None)
    return None if param is None else param.device


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """Run ``model`` in eval mode and give every submodule its own mode back afterwards."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, mode in modes:
            module.training = mode


@contextlib.contextmanager
def _explained(name: str, images: torch.Tensor) -> Iterator[None]:
    """Re-raise the model's own shape errors (an image too small for its pooling layers, wrong
    channel count) with the images' shape, so the cause is named."""
    try:
        yield
    except RuntimeError as e:
        text = str(e).lower()
        if not any(k in text for k in ("too small", "kernel size", "expected input", "channels")):
            raise
        raise ValueError(f"{name}: the model cannot run on images of shape "
                         f"{tuple(images.shape)} (too small for its pooling layers, or the wrong "
                         f"number of channels?): {str(e).splitlines()[0]}") from e


class CAMMethod:
    """Base class. ``model`` maps images (B, C, H, W) to logits (B, K).

    target_layer: module whose output A (B, C, h, w) is explained; defaults to ``model.cam_layer``.
    Call: ``maps = method(images, targets)`` -> float (B, h, w), raw (not normalized).
    ``targets=None`` explains the predicted class. ``self.last_logits`` keeps the clean logits.
    """

    name = "base"
    display = ""  # as its paper spells it (default: ``name``)
    paper_name: str | None = None  # its row in the F-CAM paper's tables, if it has one
    baseline = False  # one of the paper's six baselines (``BASELINES``)
    needs_grad = True
    relu = True  # ReLU on the combined map (all but CAM)
    single_forward = True  # the map needs only the target layer's activation and its gradient

    def __init__(self, model: nn.Module, target_layer: nn.Module | None = None) -> None:
        self.model = model
        self.target_layer = target_layer if target_layer is not None else model.cam_layer
        self.last_logits: torch.Tensor | None = None

    def _forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with _Hook(self.target_layer) as hook:
            logits = self.model(images)
            acts = hook.output
        if acts is None:
            raise RuntimeError("the target layer did not run in the forward pass")
        return acts, logits

    def _targets(self, logits: torch.Tensor, targets) -> torch.Tensor:
        if targets is None:
            return logits.argmax(dim=1)
        if isinstance(targets, int):
            tgt = torch.full((logits.shape[0],), targets, device=logits.device, dtype=torch.long)
        else:
            tgt = targets.to(logits.device).long()
        _check_range(tgt, logits.shape[1])
        return tgt

    def _grad_context(self):
        return torch.enable_grad() if self.needs_grad else torch.no_grad()

    def _finish(self, acts: torch.Tensor, logits: torch.Tensor, targets
                ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """(activations, d score / d activations or None, targets) from one forward's outputs."""
        tgt = self._targets(logits, targets)
        grads = None
        if self.needs_grad:
            score = logits.gather(1, tgt[:, None]).sum()
            grads = torch.autograd.grad(score, acts)[0].detach()
        self.last_logits = logits.detach()
        return acts.detach(), grads, tgt

    def _activations(self, images: torch.Tensor, targets
                     ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        with self._grad_context():
            # an input that requires grad keeps a graph even through frozen (requires_grad=False)
            # layers; autograd.grad stops at the activation, so the input grad is never built
            acts, logits = self._forward(images.detach().requires_grad_(self.needs_grad))
            return self._finish(acts, logits, targets)

    def weights(self, acts: torch.Tensor, grads: torch.Tensor | None, tgt: torch.Tensor
                ) -> torch.Tensor:
        """The method's channel weights: (B, C), or (B, C, h, w) for element-wise weights."""
        raise NotImplementedError

    def combine(self, weights: torch.Tensor, acts: torch.Tensor) -> torch.Tensor:
        """``sum_k w_k A_k`` (B, h, w), then ReLU when ``self.relu``."""
        if weights.ndim == 4:
            maps = (weights * acts).sum(dim=1)
        else:
            maps = torch.einsum("bc,bchw->bhw", weights.to(acts.dtype), acts)
        return torch.relu(maps) if self.relu else maps

    def _maps(self, acts: torch.Tensor, grads: torch.Tensor | None, tgt: torch.Tensor
              ) -> torch.Tensor:
        return self.combine(self.weights(acts, grads, tgt), acts)

    def _check_call(self, images: torch.Tensor) -> torch.Tensor:
        """The model's device and grad mode allow this call; returns ``images`` usable here."""
        device = _model_device(self.model)
        if device is not None and images.device != device:
            raise ValueError(f"images are on {images.device} but the model is on {device}: move "
                             f"one of them (e.g. images.to({str(device)!r}))")
        param = next(self.model.parameters(), None)
        if param is not None and images.dtype != param.dtype:
            raise ValueError(f"images are {images.dtype} but the model's weights are "
                             f"{param.dtype}: convert them (images.to({param.dtype})), or use "
                             f"torch.autocast for mixed precision")
        if self.needs_grad and torch.is_inference_mode_enabled():
            raise RuntimeError(f"{self.name} needs gradients, which torch.inference_mode() "
                               f"forbids: call it outside inference_mode (no_grad is fine)")
        return images.clone() if images.is_inference() else images  # a normal tensor for autograd

    def __call__(self, images: torch.Tensor, targets: torch.Tensor | int | None = None) -> torch.Tensor:
        _check_inputs(images, targets)
        images = self._check_call(images)
        with _eval_mode(self.model), _explained(self.name, images):
            return self.compute(images, targets)

    def full_resolution(self, images: torch.Tensor, targets: torch.Tensor | int | None = None
                        ) -> torch.Tensor:
        """Maps at the input size: min-max normalized per map at low resolution, then bilinear
        upsampling (``upsample_maps``): (B, H, W) in [0, 1] (what the protocol evaluates and
        what the seeds are sampled from)."""
        return upsample_maps(self(images, targets), images.shape[-2:])

    def compute(self, images: torch.Tensor, targets) -> torch.Tensor:
        found = self._activations(images, targets)
        with torch.no_grad():
            return self._maps(*found)

    def from_features(self, images: torch.Tensor, acts: torch.Tensor,
                      classify: Callable[[torch.Tensor], torch.Tensor], targets) -> torch.Tensor:
        """Maps of ``images`` when their target-layer activation ``acts`` (B, C, h, w) is already
        computed and ``classify(acts)`` gives the logits: saves the forward pass (stage 2 shares the
        encoder's forward with the decoder). Same numbers as ``method(images, targets)``.
        Methods that need other forwards (noisy or masked inputs) run their full path."""
        if not self.single_forward:
            return self(images, targets)
        _check_inputs(images, targets)
        if self.needs_grad and torch.is_inference_mode_enabled():
            raise RuntimeError(f"{self.name} needs gradients, which torch.inference_mode() forbids")
        with self._grad_context():
            a = acts.detach().requires_grad_(self.needs_grad)
            found = self._finish(a, classify(a), targets)
        with torch.no_grad():
            return self._maps(*found)


METHODS: dict[str, type[CAMMethod]] = {}


def register_cam_method(cls: type[CAMMethod] | None = None, *, replace: bool = False):
    """Class decorator: make a ``CAMMethod`` subclass known by its ``name`` to
    ``build_cam_method``, the run settings (stage-2 seeds, stage-1 selection), the main job's
    ``--method`` and the display names. A name already taken raises ``ValueError`` unless
    ``replace=True``.

    Example:
        >>> @register_cam_method
        ... class Mine(CAMMethod):
        ...     name = "mine"
        ...     def weights(self, acts, grads, targets): return grads.mean(dim=(2, 3))
    """

    def add(method: type[CAMMethod]) -> type[CAMMethod]:
        if not (isinstance(method, type) and issubclass(method, CAMMethod)):
            raise TypeError(f"{method!r} is not a CAMMethod subclass")
        if not method.name or method.name == CAMMethod.name or not method.name.isidentifier():
            raise ValueError(f"{method.__name__} needs a `name` of its own (an identifier), got "
                             f"{method.name!r}")
        add_entry(METHODS, method.name, method, "CAM method", replace)
        return method

    return add if cls is None else add(cls)


@register_cam_method
class CAM(CAMMethod):
    """Class activation mapping from the linear layer's weights; no gradients, no ReLU."""

    name = "cam"
    display, paper_name, baseline = "CAM", "CAM*", True
    needs_grad = False
    relu = False

    def __init__(self, model: nn.Module, target_layer: nn.Module | None = None,
                 fc_layer: nn.Linear | None = None) -> None:
        super().__init__(model, target_layer)
        self.fc = fc_layer if fc_layer is not None else model.fc

    def weights(self, acts, grads, tgt):
        return self.fc.weight[tgt]  # (B, C)


@register_cam_method
class GradCAM(CAMMethod):
    """``ReLU(sum_k mean_ij(g_kij) A_k)``."""

    name = "gradcam"
    display, paper_name, baseline = "GradCAM", "GradCAM", True

    def weights(self, acts, grads, tgt):
        return grads.mean(dim=(2, 3))


def _gradcampp_weights(acts: torch.Tensor, g: torch.Tensor, g2: torch.Tensor,
                       g3: torch.Tensor) -> torch.Tensor:
    """Paper's closed-form alpha; returns weights (B, C)."""
    sum_acts = acts.sum(dim=(2, 3), keepdim=True)
    denom = 2 * g2 + sum_acts * g3
    safe = torch.where(denom != 0, denom, torch.ones_like(denom))
    alpha = torch.where((g2 != 0) & (denom != 0), g2 / safe, torch.zeros_like(g2))
    return (alpha * torch.relu(g)).sum(dim=(2, 3))


@register_cam_method
class GradCAMpp(CAMMethod):
    """GradCAM++ with ``alpha = g^2 / (2 g^2 + sum(A) g^3)``."""

    name = "gradcampp"
    display, paper_name, baseline = "GradCAM++", "GradCAM++", True

    def weights(self, acts, g, tgt):
        return _gradcampp_weights(acts, g, g * g, g * g * g)


@register_cam_method
class SmoothGradCAMpp(CAMMethod):
    """Smooth Grad-CAM++: gradient moments averaged over ``n_samples`` noisy inputs.

    sigma is the noise std on the normalized input; ``generator`` makes the noise reproducible.
    ``activations``: the map combines the weights with the ``"clean"`` input's activations (the
    paper's definition, default) or with the ``"last_noisy"`` sample's, as the official F-CAM code
    does in effect (its activation hook stays on during the noisy passes, ``dlib/cams/gradcam.py:
    309-316`` and ``core.py:93-96,181``); the paper presets use the latter.
    """

    name = "smoothgradcampp"
    display, paper_name, baseline = "Smooth-GradCAM++", "Smooth-GradCAM++", True
    single_forward = False
    ACTIVATIONS = ("clean", "last_noisy")

    def __init__(self, model: nn.Module, target_layer: nn.Module | None = None,
                 n_samples: int = 4, sigma: float = 0.3,
                 generator: torch.Generator | None = None, activations: str = "clean") -> None:
        super().__init__(model, target_layer)
        if n_samples < 1:
            raise ValueError("n_samples must be >= 1")
        if activations not in self.ACTIVATIONS:
            raise ValueError(f"activations must be one of {self.ACTIVATIONS}, got {activations!r}")
        self.n_samples, self.sigma, self.generator = n_samples, sigma, generator
        self.activations = activations

    def noise(self, images: torch.Tensor) -> torch.Tensor:
        """One draw of N(0, sigma^2) noise shaped like ``images`` (drawn on CPU, moved)."""
        z = torch.randn(images.shape, generator=self.generator, dtype=images.dtype)
        return (self.sigma * z).to(images.device)

    def compute(self, images, targets):
        with torch.no_grad():
            acts, logits = self._forward(images)
        tgt = self._targets(logits, targets)
        g1 = g2 = g3 = 0
        for _ in range(self.n_samples):
            noisy_acts, g, _ = self._activations(images + self.noise(images), tgt)
            g1, g2, g3 = g1 + g, g2 + g * g, g3 + g * g * g
        self.last_logits = logits
        n = self.n_samples
        weights = _gradcampp_weights(acts, g1 / n, g2 / n, g3 / n)
        return self.combine(weights, noisy_acts if self.activations == "last_noisy" else acts)


@register_cam_method
class XGradCAM(CAMMethod):
    """``ReLU(sum_k w_k A_k)``, ``w_k = sum(g_k A_k) / sum(A_k)`` (0 when sum(A_k) = 0)."""

    name = "xgradcam"
    display, paper_name, baseline = "XGradCAM", "XGradCAM", True

    def weights(self, acts, grads, tgt):
        norm = acts.sum(dim=(2, 3))
        num = (grads * acts).sum(dim=(2, 3))
        return torch.where(norm != 0, num / torch.where(norm != 0, norm, torch.ones_like(norm)),
                           torch.zeros_like(norm))


@register_cam_method
class LayerCAM(CAMMethod):
    """``ReLU(sum_k ReLU(g_k) * A_k)`` (element-wise weights)."""

    name = "layercam"
    display, paper_name, baseline = "LayerCAM", "LayerCAM", True

    def weights(self, acts, grads, tgt):
        return torch.relu(grads)  # (B, C, h, w)


@register_cam_method
class ScoreCAM(CAMMethod):
    """Score-CAM: one forward per channel (slow; the runtime reference of the paper)."""

    name = "scorecam"
    display = "ScoreCAM"
    needs_grad = False
    single_forward = False

    def __init__(self, model: nn.Module, target_layer: nn.Module | None = None,
                 batch_size: int = 32) -> None:
        super().__init__(model, target_layer)
        self.batch_size = batch_size

    def compute(self, images, targets):
        with torch.no_grad():
            acts, logits = self._forward(images)
            self.last_logits = logits
            tgt = self._targets(logits, targets)
            b, c = acts.shape[:2]
            flat = acts.flatten(2)
            lo = flat.min(dim=2, keepdim=True)[0]
            flat = flat - lo
            flat = flat / (flat.max(dim=2, keepdim=True)[0] + 1e-8)
            masks = F.interpolate(flat.view_as(acts), size=images.shape[-2:], mode="bilinear",
                                  align_corners=False)  # (B, C, H, W)
            base = logits.gather(1, tgt[:, None])  # (B, 1)
            weights = torch.empty(b, c, device=acts.device, dtype=acts.dtype)
            for i in range(b):
                for s in range(0, c, self.batch_size):
                    m = masks[i, s : s + self.batch_size, None]  # (n, 1, H, W)
                    weights[i, s : s + self.batch_size] = self.model(images[i : i + 1] * m)[:, tgt[i]]
            return self.combine((weights - base).softmax(dim=1), acts)


def maps_from_one_pass(methods: list[CAMMethod], images: torch.Tensor,
                       targets: torch.Tensor | int | None = None) -> list[torch.Tensor]:
    """Raw low-resolution maps (B, h, w) of several methods on one model from ONE forward (and one
    backward when any needs gradients): the activation and d score / d activation are the same
    for every single-forward method, so the maps equal ``[m(images, targets) for m in methods]``
    at a fraction of the cost (validation scores six methods per epoch). Methods that need other
    forwards (noisy or masked inputs) are computed on their own."""
    if not methods:
        return []
    first = methods[0]
    if any(m.model is not first.model or m.target_layer is not first.target_layer
           for m in methods):
        raise ValueError("maps_from_one_pass needs methods on the same model and target layer")
    _check_inputs(images, targets)
    shared = [m for m in methods if m.single_forward]
    maps: dict[int, torch.Tensor] = {}
    if shared:
        lead = next((m for m in shared if m.needs_grad), shared[0])
        images = lead._check_call(images)
        with _eval_mode(first.model):
            acts, grads, tgt = lead._activations(images, targets)
            with torch.no_grad():
                for m in shared:
                    m.last_logits = lead.last_logits
                    maps[id(m)] = m._maps(acts, grads if m.needs_grad else None, tgt)
    for m in methods:
        if not m.single_forward:
            maps[id(m)] = m(images, targets)
    return [maps[id(m)] for m in methods]


# the paper's six baselines, in its tables' order (registered methods of one's own are not)
BASELINES = tuple(name for name, cls in METHODS.items() if cls.baseline)


def display_name(key: str) -> str:
    """A method key as its paper spells it (``CAMMethod.display``), keeping a `` + F-CAM``
    suffix: ``"gradcampp + F-CAM"`` -> ``"GradCAM++ + F-CAM"``; unknown keys are returned
    unchanged."""
    method, plus, rest = key.partition(" + ")
    cls = METHODS.get(method)
    return (cls.display or cls.name if cls else method) + plus + rest


def build_cam_method(name: str, model: nn.Module, **kwargs) -> CAMMethod:
    """A CAM method by name.

    Args:
        name: a key of ``METHODS`` (``cam``, ``gradcam``, ``gradcampp``, ``smoothgradcampp``,
            ``xgradcam``, ``layercam``, ``scorecam``); case, ``-``, ``_`` and ``+`` are forgiven.
        model: a classifier with ``cam_layer`` (and ``fc`` for CAM), e.g. ``WSOLClassifier``.
        **kwargs: the method's own options (``n_samples``, ``sigma``, ``generator``...).
    Returns:
        A callable ``method(images, targets) -> (B, h, w)`` raw maps;
        ``method.full_resolution(images, targets) -> (B, H, W)`` normalized to [0, 1].
    Example:
        >>> maps = build_cam_method("layercam", clf).full_resolution(images, labels)
    """
    def simple(text: str) -> str:
        return text.lower().replace("-", "").replace("_", "").replace("+", "p")

    found = [cls for key, cls in METHODS.items() if simple(key) == simple(name)]
    if not found:
        raise ValueError(f"unknown CAM method {name!r}; choose from {sorted(METHODS)}")
    return found[0](model, **kwargs)


def normalize_maps(maps: torch.Tensor) -> torch.Tensor:
    """Per-map min-max to [0, 1]: (B, h, w) -> (B, h, w); a constant map becomes zeros.

    NaN or inf maps raise ValueError; finite maps whose range overflows their dtype (e.g. -3e38
    and 3e38 in float32) are normalized in float64.
    """
    check_maps(maps, "CAM maps")
    flat = maps.flatten(1)
    lo = flat.min(dim=1, keepdim=True)[0]
    span = flat.max(dim=1, keepdim=True)[0] - lo
    if not bool(torch.isfinite(span).all()):  # finite values whose range overflows (e.g. +-3e38)
        wide = flat.double()
        lo64 = wide.min(dim=1, keepdim=True)[0]
        span64 = wide.max(dim=1, keepdim=True)[0] - lo64
        out = torch.where(span64 > 0, (wide - lo64) / torch.where(span64 > 0, span64, 1.0), 0.0)
        return out.to(maps.dtype).view_as(maps)
    out = torch.where(span > 0, (flat - lo) / torch.where(span > 0, span, 1.0), 0.0)
    return out.view_as(maps)


def upsample_maps(maps: torch.Tensor, size: tuple[int, int] | int, normalize: bool = True
                  ) -> torch.Tensor:
    """Low-res maps (B, h, w) -> (B, H, W): min-max normalization per map at low resolution,
    then bilinear upsampling (``align_corners=False``), clamped to [0, 1] against rounding.

    The official F-CAM order (``dlib/cams/core.py:187-189`` normalizes, then
    ``train_wsol.py:243-247`` / ``inference_wsol.py:213-216`` interpolate): the upsampled map's
    extremes lie between grid points, so its max is usually a little below 1. ``normalize=False``
    upsamples the raw values."""
    size = (size, size) if isinstance(size, int) else tuple(size)
    low = normalize_maps(maps.float()) if normalize else maps.float()
    up = F.interpolate(low[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]
    return up.clamp_(0.0, 1.0) if normalize else up
