"""Two-stage F-CAM training: what each stage trains and how one batch is a step.

Stage 1 trains the WSOL classifier with cross-entropy. Stage 2 freezes it and trains the U-Net
decoder with the F-CAM objective (``fcam_nb.losses.FCAMObjective``: seeds from one CAM method,
partial CE, dense CRF, size constraint). The loop itself (resume, learning rate, randomness,
logs, best/last checkpoints) is ``fcam_nb.engine.fit``; model selection is on the validation
split by the localization metric. DDP when launched by ``torchrun``, bf16 autocast on CUDA.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

from fcam_nb import distributed
from fcam_nb.cams import build_cam_method, upsample_maps
from fcam_nb.config import RunConfig, Stage1Config, run_fingerprint
from fcam_nb.data.transforms import denormalize_255
from fcam_nb.engine import (
    Stage,
    autocast,
    best_path,
    fit,
    load_checked,
    load_weights,
    weights_digest,
)
from fcam_nb.evaluate import cam_predictors, fcam_predictor, joint
from fcam_nb.losses import FCAMObjective
from fcam_nb.models import FCAM, WSOLClassifier, build_classifier, build_decoder


def _param_groups(model: WSOLClassifier, cfg: Stage1Config, pretrained: bool) -> list[dict]:
    """One group; with a pretrained backbone the encoder's ``new_layers`` and the head get
    ``cfg.new_layers_lr_mult`` x the rate."""
    if not pretrained:
        return [{"params": model.parameters(), "lr": cfg.lr}]
    modules = [model.encoder.get_submodule(name) for name in model.encoder.new_layers]
    new_ids = {id(p) for module in (*modules, model.fc) for p in module.parameters()}
    body = [p for p in model.parameters() if id(p) not in new_ids]
    new = [p for p in model.parameters() if id(p) in new_ids]
    return [{"params": body, "lr": cfg.lr}, {"params": new, "lr": cfg.lr * cfg.new_layers_lr_mult}]


def train_classifier(cfg: RunConfig) -> WSOLClassifier:
    """Stage 1: train (or resume, or load) the WSOL classifier in ``cfg.out_dir``.

    One training run; after each epoch every CAM method of ``cfg.stage1.select_methods`` scores
    it on the validation split and keeps its own best epoch (``stage1_best_<method>.pt``).

    Args:
        cfg: the run (``cfg.stage1`` holds the recipe and the selection).
    Returns:
        The classifier of ``cfg.stage2.cam_method`` (selected by that method's validation
        localization; by ``select_methods[0]``'s when ``stage1.shared``), in eval mode, on
        ``cfg.torch_device()``.
    Example:
        >>> classifier = train_classifier(synthetic_run("data/synthetic", "runs/demo"))
    """
    cfg.check()  # every setting, the data folders and the output folder, before any download
    device = cfg.torch_device()
    distributed.init_from_env(device)
    s1 = cfg.stage1
    torch.manual_seed(cfg.seed)
    model = build_classifier(cfg.backbone, cfg.data.num_classes, cfg.weights).to(device)
    opt = torch.optim.SGD(_param_groups(model, s1, cfg.weights is not None), lr=s1.lr,
                          momentum=s1.momentum, weight_decay=s1.weight_decay,
                          nesterov=s1.nesterov)
    net = DistributedDataParallel(model) if distributed.is_distributed() else model

    def step(x, y, gen, epoch):
        with autocast(cfg, device):
            loss = F.cross_entropy(net(x).float(), y)
        return {"total": loss}

    predictors = lambda: cam_predictors(model, s1.select_methods, cfg.cam_kwargs)  # one forward
    fit(cfg, Stage(number=1, tag="stage1", trained=model, optimizer=opt, epochs=s1.epochs,
                   batch_size=s1.batch_size, step=step, predictors=predictors,
                   lr_schedule=s1.lr_schedule, step_size=s1.step_size, gamma=s1.gamma,
                   train_mode=model.train, fingerprint=run_fingerprint(cfg, 1),
                   select_by=s1.select_by))
    return load_classifier(cfg)


def classifier_path(cfg: RunConfig, which: str = "best", method: str | None = None) -> Path:
    """The stage-1 checkpoint of ``method`` (default ``cfg.stage2.cam_method``): ``last``, or its
    ``best`` (``stage1_best_<selector>.pt``, see ``Stage1Config.selector``)."""
    if which == "last":
        return Path(cfg.out_dir) / "stage1_last.pt"
    if which != "best":
        raise ValueError(f"which must be 'best' or 'last', got {which!r}")
    selector = cfg.stage1.selector(method or cfg.stage2.cam_method)
    if selector not in cfg.stage1.select_methods:
        raise ValueError(f"no classifier was selected by {selector!r}: stage1.select_methods is "
                         f"{cfg.stage1.select_methods} (or set stage1.shared=True)")
    return best_path(Path(cfg.out_dir), "stage1", selector)


def load_classifier(cfg: RunConfig, which: str = "best", method: str | None = None
                    ) -> WSOLClassifier:
    """The stage-1 classifier saved in ``cfg.out_dir`` for ``method`` (default the run's CAM
    method; see ``classifier_path``), in eval mode."""
    device = cfg.torch_device()
    model = build_classifier(cfg.backbone, cfg.data.num_classes).to(device)
    path = classifier_path(cfg, which, method)
    state = load_checked(path, device, run_fingerprint(cfg, 1),
                         finished=classifier_path(cfg, "last"))
    load_weights(model, state["weights"], path)
    return model.eval()


def build_fcam(cfg: RunConfig, classifier: WSOLClassifier) -> FCAM:
    """A fresh decoder (initialized from ``cfg.seed + 1``; the global RNG is left as it was) on
    ``classifier``, on the run's device."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed + 1)
        decoder = build_decoder(classifier.encoder)
    return FCAM(classifier, decoder).to(cfg.torch_device())


def train_fcam(cfg: RunConfig, classifier: WSOLClassifier | None = None) -> FCAM:
    """Stage 2: train (or resume, or load) the decoder of ``cfg.stage2.variant``.

    Args:
        cfg: the run; ``cfg.stage2`` holds the CAM method, the loss terms and the recipe, and
            its ``variant.tag`` names the checkpoints (several variants share one run folder).
        classifier: the stage-1 classifier (default: the one ``cfg.stage2.cam_method`` selected,
            loaded from ``cfg.out_dir``; see ``load_classifier``).
    Returns:
        The best F-CAM model by validation localization, in eval mode.
    Example:
        >>> model = train_fcam(cfg.with_variant(Variant("cam", crf=True, asc=False)), classifier)
        >>> maps = model.localization_map(images)  # (B, H, W) in [0, 1]
    """
    cfg.check()
    device = cfg.torch_device()
    distributed.init_from_env(device)
    s2 = cfg.stage2
    classifier = classifier if classifier is not None else load_classifier(cfg)
    classifier_id = weights_digest(classifier)
    model = build_fcam(cfg, classifier)
    cam = build_cam_method(s2.cam_method, model.classifier, **cfg.cam_kwargs(s2.cam_method))
    objective = FCAMObjective.from_config(s2)
    opt = torch.optim.SGD(model.decoder.parameters(), lr=s2.lr, momentum=s2.momentum,
                          weight_decay=s2.weight_decay, nesterov=s2.nesterov)
    net = DistributedDataParallel(model) if distributed.is_distributed() else model

    def step(x, y, gen, epoch):
        with autocast(cfg, device):  # one encoder forward (fp32, see FCAM.forward) feeds both
            feats, _, seg = net(x, with_features=True)  # the CAM and the decoder (autocast)
        # CAMs and seeds in fp32: bf16 moves CAM values by up to ~9 of 255 levels (and Otsu)
        low = cam.from_features(x, feats[-1], model.classifier.pool_and_classify, y)
        cams = upsample_maps(low, x.shape[-2:])
        return objective(seg, cams, denormalize_255(x), gen, epoch)

    fit(cfg, Stage(number=2, tag=s2.variant.tag, trained=model.decoder, optimizer=opt,
                   epochs=s2.epochs, batch_size=s2.batch_size, step=step,
                   predictors=lambda: joint({"": fcam_predictor(model)}), lr_schedule=s2.lr_schedule,
                   step_size=s2.step_size, gamma=s2.gamma, select_by=s2.select_by,
                   train_mode=model.train,
                   fingerprint=run_fingerprint(cfg, 2), classifier_id=classifier_id,
                   extra_state=objective, end_epoch=objective.step_epoch))
    return _load_decoder(cfg, classifier, "best", classifier_id)


def load_fcam(cfg: RunConfig, classifier: WSOLClassifier | None = None, which: str = "best"
              ) -> FCAM:
    """The F-CAM model of ``cfg.stage2.variant`` saved in ``cfg.out_dir``, in eval mode; refused
    when it was trained on another classifier than ``classifier`` (default: stage 1's best)."""
    classifier = classifier if classifier is not None else load_classifier(cfg)
    return _load_decoder(cfg, classifier, which, weights_digest(classifier))


def _load_decoder(cfg: RunConfig, classifier: WSOLClassifier, which: str, classifier_id: str
                  ) -> FCAM:
    """``load_fcam`` with the classifier's digest already computed (hashing it costs a pass over
    all its weights: ~100 MB for ResNet50)."""
    model = build_fcam(cfg, classifier)
    path = Path(cfg.out_dir) / f"{cfg.stage2.variant.tag}_{which}.pt"
    state = load_checked(path, cfg.torch_device(), run_fingerprint(cfg, 2), classifier_id,
                         finished=path.with_name(f"{cfg.stage2.variant.tag}_last.pt"))
    load_weights(model.decoder, state["weights"], path)
    return model.eval()
