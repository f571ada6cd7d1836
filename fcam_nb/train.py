"""Two-stage F-CAM training.

Stage 1 trains the WSOL classifier (cross-entropy). Stage 2 freezes it and trains the U-Net
decoder with the seeds sampled from one CAM method (partial CE), plus the dense CRF loss and the
absolute size constraint, each switchable (the ablation). Both stages:

* are deterministic from ``seed``: the shuffling, crops, flips and seed pixels of epoch ``e``
  come from a generator seeded with ``(seed, stage, e)``, so a resumed run is identical;
* select the model on the validation split by the localization metric (MaxBoxAcc, or PxAP when
  the split has masks only) and keep ``*_best.pt``;
* write ``*_last.pt`` atomically after every epoch and resume from it; each checkpoint records a
  fingerprint of its settings and data (``run_fingerprint``), and a checkpoint with another
  fingerprint is refused with an error instead of being silently resumed or reused;
* show tqdm progress, run under DDP when launched by ``torchrun`` and use bf16 autocast on CUDA.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from fcam_nb import checkpoint, distributed
from fcam_nb.cams import build_cam_method, upsample_maps
from fcam_nb.data.transforms import denormalize_255, normalize, random_crop_flip
from fcam_nb.data.wsol import WSOLDataset, collate
from fcam_nb.evaluate import cam_predictor, evaluate, fcam_predictor
from fcam_nb.losses import SizeConstraint, dense_crf_loss, partial_cross_entropy
from fcam_nb.models import FCAM, WSOLClassifier, build_classifier, build_decoder
from fcam_nb.sampling import seed_labels


@dataclass
class DataConfig:
    """Where a wsol-format dataset lives (see ``fcam_nb.data.synthetic.split_paths``)."""

    data_root: str
    metadata_root: str  # holds <split>/ folders
    num_classes: int
    mask_root: str | None = None
    mask_metadata_root: str | None = None
    resize: int = 256  # train: resize then random crop `size`
    size: int = 224
    cache: bool = False
    workers: int = 0

    def dataset(self, split: str, train: bool) -> WSOLDataset:
        return WSOLDataset(
            self.data_root,
            Path(self.metadata_root) / split,
            resize=self.resize if train else self.size,
            size=self.size,
            num_classes=self.num_classes,
            mask_root=self.mask_root,
            mask_metadata_dir=(
                Path(self.mask_metadata_root) / split if self.mask_metadata_root else None
            ),
            cache=self.cache,
        )


@dataclass
class Stage1Config:
    epochs: int = 50
    lr: float = 0.01
    head_lr_mult: float = 10.0  # new layers (CAM head, fc) learn faster, as in Choe et al.
    momentum: float = 0.9
    weight_decay: float = 1e-4
    batch_size: int = 32
    select_method: str = "cam"  # CAM method used for validation model selection
    select_by: str = "loc"  # "loc" (MaxBoxAcc / PxAP of select_method, the protocol) or "cls"
    cosine: bool = True  # cosine learning-rate decay over the epochs


@dataclass
class Stage2Config:
    epochs: int = 20
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    batch_size: int = 32
    cam_method: str = "cam"
    n_bg: float = 0.3
    n_fg_seeds: int = 1
    n_bg_seeds: int = 1
    dilate_ksz: int = 3
    erode_ksz: int = 11
    use_crf: bool = True
    crf_weight: float = 2e-9
    sigma_xy: float = 100.0
    sigma_rgb: float = 15.0
    crf_scale: float = 1.0
    crf_map_mode: str = "bilinear"  # "area" for crf_scale < 0.5
    use_size: bool = True
    size_weight: float = 0.1
    cosine: bool = False


@dataclass
class RunConfig:
    data: DataConfig
    out_dir: str
    backbone: str = "tiny"
    weights: str | None = None
    stage1: Stage1Config = field(default_factory=Stage1Config)
    stage2: Stage2Config = field(default_factory=Stage2Config)
    seed: int = 0
    device: str = "auto"
    amp: bool = True  # bf16 autocast, CUDA only
    eval_step: float = 0.001
    progress: bool = True

    def torch_device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


_UNTRACKED = ("out_dir", "progress", "device", "amp")  # where and how a run executes, not what
_UNTRACKED_DATA = ("data_root", "metadata_root", "mask_root", "mask_metadata_root", "cache",
                   "workers")  # paths: their content is hashed instead


def run_fingerprint(cfg: RunConfig, stage: int) -> str:
    """16 hex digits naming what a stage's checkpoints are trained on.

    Hashes the settings (stage 1's for stage 1; stage 1's and 2's for stage 2; not paths, device,
    progress bars or epoch counts, so a run can move or be extended), the train/val metadata files
    and, for the synthetic set, the generator's ``config.json`` beside the images folder.
    """
    if stage not in (1, 2):
        raise ValueError(f"stage must be 1 or 2, got {stage}")
    settings = {k: v for k, v in cfg.to_dict().items() if k not in _UNTRACKED}
    settings["data"] = {k: v for k, v in settings["data"].items() if k not in _UNTRACKED_DATA}
    settings["stage1"].pop("epochs")
    settings["stage2"].pop("epochs")
    if stage == 1:
        del settings["stage2"]
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    files = [Path(cfg.data.data_root).parent / "config.json"]
    for split in ("train", "val"):
        files += sorted((Path(cfg.data.metadata_root) / split).glob("*.txt"))
    for path in files:
        if path.is_file():
            digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def _load_checked(path: Path, device: torch.device, fingerprint: str) -> dict:
    """A checkpoint, refused when it was trained with other settings or data."""
    state = checkpoint.load(path, device)
    saved = state.get("fingerprint")
    if saved is not None and saved != fingerprint:
        raise ValueError(
            f"{path} was trained with other settings or data (fingerprint {saved}, this run "
            f"{fingerprint}); delete it or choose another out_dir"
        )
    return state


def _generator(seed: int, stage: int, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + stage * 10_007 + epoch)


def _batches(dataset: WSOLDataset, batch_size: int, gen: torch.Generator | None, workers: int,
             shard: bool) -> DataLoader:
    """Deterministic loader: a permutation from ``gen`` (None = in order), sharded by rank."""
    n = len(dataset)
    order = torch.randperm(n, generator=gen).tolist() if gen is not None else list(range(n))
    if shard:
        order = order[distributed.rank() :: distributed.world_size()]
    groups = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if gen is not None:  # drop a last tiny batch (BN statistics)
        groups = [g for g in groups if len(g) > 1]
    return DataLoader(dataset, batch_sampler=groups, collate_fn=collate, num_workers=workers)


def _autocast(cfg: RunConfig, device: torch.device):
    enabled = cfg.amp and device.type == "cuda"
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=enabled)


def _selection_key(metrics: dict, by: str = "loc") -> float:
    if by == "cls":
        return metrics["cls_acc"]
    if by != "loc":
        raise ValueError(f"select_by must be 'loc' or 'cls', got {by!r}")
    return metrics.get("max_box_acc", metrics.get("pxap", 0.0))


def _set_lr(opt: torch.optim.Optimizer, base: list[float], epoch: int, epochs: int,
            cosine: bool) -> None:
    factor = 0.5 * (1 + math.cos(math.pi * epoch / epochs)) if cosine else 1.0
    for group, lr in zip(opt.param_groups, base, strict=True):
        group["lr"] = lr * factor


def _log(path: Path, record: dict) -> None:
    if distributed.is_main():
        with open(path, "a") as f:
            f.write(json.dumps(record) + "\n")


def _resume(path: Path, device: torch.device, fingerprint: str) -> dict | None:
    return _load_checked(path, device, fingerprint) if path.is_file() else None


def _base_lrs(opt: torch.optim.Optimizer) -> list[float]:
    """Each group's starting lr, stored in the group as ``initial_lr`` so a resume keeps it."""
    for group in opt.param_groups:
        group.setdefault("initial_lr", group["lr"])
    return [group["initial_lr"] for group in opt.param_groups]


def _train_batches(cfg: RunConfig, dataset: WSOLDataset, batch_size: int, gen: torch.Generator,
                   desc: str, device: torch.device):
    """One epoch of (normalized random crop + flip, labels) on ``device``, this rank's shard."""
    loader = _batches(dataset, batch_size // distributed.world_size(), gen, cfg.data.workers,
                      shard=True)
    for batch in tqdm(loader, desc=desc, disable=not cfg.progress or not distributed.is_main(),
                      leave=False):
        x = normalize(random_crop_flip(batch["image"].to(device), cfg.data.size, gen))
        yield x, batch["label"].to(device)


def _validate(cfg: RunConfig, predictor, dataset: WSOLDataset, batch_size: int,
              device: torch.device) -> dict:
    return evaluate(predictor, _batches(dataset, batch_size, None, cfg.data.workers, shard=False),
                    cfg.data.size, device, cfg.eval_step)


def _save_epoch(cfg: RunConfig, name: str, weights: dict, extra: dict, epoch: int, val: dict,
                best: float, history: list[dict], key: float, ties_to_later: bool,
                fingerprint: str) -> float:
    """Rank 0 writes ``<name>_best.pt`` when the validation key improves (ties: keep the later
    epoch if ``ties_to_later``) and ``<name>_last.pt`` always; returns the best key."""
    out = Path(cfg.out_dir)
    if distributed.is_main():
        if key > best or (ties_to_later and key == best):
            best = key
            checkpoint.save_atomic({**weights, "epoch": epoch, "metrics": val,
                                    "config": cfg.to_dict(), "fingerprint": fingerprint},
                                   out / f"{name}_best.pt")
        checkpoint.save_atomic({**weights, **extra, "epoch": epoch, "best": best,
                                "history": history, "fingerprint": fingerprint},
                               out / f"{name}_last.pt")
    distributed.barrier()
    return best


# ------------------------------------------------------------------------------------------------
# Stage 1
# ------------------------------------------------------------------------------------------------


def _param_groups(model: WSOLClassifier, cfg: Stage1Config, pretrained: bool) -> list[dict]:
    if not pretrained:
        return [{"params": model.parameters(), "lr": cfg.lr}]
    head_ids = {id(p) for p in model.cam_layer.parameters()} | {id(p) for p in model.fc.parameters()}
    body = [p for p in model.parameters() if id(p) not in head_ids]
    head = [p for p in model.parameters() if id(p) in head_ids]
    return [{"params": body, "lr": cfg.lr}, {"params": head, "lr": cfg.lr * cfg.head_lr_mult}]


def train_classifier(cfg: RunConfig) -> WSOLClassifier:
    """Stage 1. Returns the best classifier (by validation localization of ``select_method``)."""
    device = cfg.torch_device()
    distributed.init_from_env(device)
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    s1 = cfg.stage1
    torch.manual_seed(cfg.seed)
    model = build_classifier(cfg.backbone, cfg.data.num_classes, cfg.weights).to(device)
    opt = torch.optim.SGD(_param_groups(model, s1, cfg.weights is not None), lr=s1.lr,
                          momentum=s1.momentum, weight_decay=s1.weight_decay)
    start, best, history = 0, -1.0, []
    fingerprint = run_fingerprint(cfg, 1)
    state = _resume(out / "stage1_last.pt", device, fingerprint)
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        start, best, history = state["epoch"] + 1, state["best"], state["history"]
    if start >= s1.epochs:
        return load_classifier(cfg)
    net = DistributedDataParallel(model) if distributed.is_distributed() else model
    train_set = cfg.data.dataset("train", train=True)
    val_set = cfg.data.dataset("val", train=False)
    base_lrs = _base_lrs(opt)
    for epoch in range(start, s1.epochs):
        _set_lr(opt, base_lrs, epoch, s1.epochs, s1.cosine)
        gen = _generator(cfg.seed, 1, epoch)
        model.train()
        t0, total, seen = time.time(), 0.0, 0
        for x, y in _train_batches(cfg, train_set, s1.batch_size, gen,
                                   f"stage1 {epoch + 1}/{s1.epochs}", device):
            with _autocast(cfg, device):
                loss = F.cross_entropy(net(x).float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.detach() * y.shape[0]
            seen += y.shape[0]
        model.eval()
        val = _validate(cfg, cam_predictor(model, s1.select_method), val_set, s1.batch_size, device)
        record = {"stage": 1, "epoch": epoch, "loss": float(total) / max(seen, 1),
                  "seconds": time.time() - t0, **{f"val_{k}": v for k, v in val.items()}}
        history.append(record)
        _log(out / "log.jsonl", record)
        best = _save_epoch(cfg, "stage1", {"model": model.state_dict()},
                           {"optimizer": opt.state_dict()}, epoch, val, best, history,
                           _selection_key(val, s1.select_by), ties_to_later=True,
                           fingerprint=fingerprint)
    return load_classifier(cfg)


def load_classifier(cfg: RunConfig, which: str = "best") -> WSOLClassifier:
    """The stage-1 classifier saved in ``cfg.out_dir`` (``best`` or ``last``), in eval mode."""
    device = cfg.torch_device()
    model = build_classifier(cfg.backbone, cfg.data.num_classes).to(device)
    state = _load_checked(Path(cfg.out_dir) / f"stage1_{which}.pt", device, run_fingerprint(cfg, 1))
    model.load_state_dict(state["model"])
    return model.eval()


# ------------------------------------------------------------------------------------------------
# Stage 2
# ------------------------------------------------------------------------------------------------


def stage2_losses(
    fcam_logits: torch.Tensor,
    cams: torch.Tensor,
    images_255: torch.Tensor,
    cfg: Stage2Config,
    size_loss: SizeConstraint | None,
    gen: torch.Generator | None,
) -> dict[str, torch.Tensor]:
    """The stage-2 objective on a batch.

    fcam_logits (B, 2, H, W); cams (B, H, W) normalized CAMs at input size; images_255
    (B, 3, H, W) RGB in [0, 255]. Returns the terms and their sum under ``total``.
    """
    seeds = seed_labels(cams, cfg.n_bg, cfg.n_fg_seeds, cfg.n_bg_seeds, cfg.dilate_ksz,
                        cfg.erode_ksz, gen)
    probs = fcam_logits.float().softmax(dim=1)
    terms = {"pce": partial_cross_entropy(fcam_logits, seeds)}
    if cfg.use_crf:
        terms["crf"] = dense_crf_loss(images_255, probs, cfg.sigma_xy, cfg.sigma_rgb,
                                      cfg.crf_weight, cfg.crf_scale, map_mode=cfg.crf_map_mode)
    if cfg.use_size and size_loss is not None:
        terms["size"] = size_loss(probs)
    terms["total"] = sum(terms.values())
    return terms


def variant_tag(cam_method: str, use_crf: bool = True, use_size: bool = True) -> str:
    """Checkpoint name of a stage-2 variant: ``fcam_<method>[_nocrf][_nosize]``."""
    return f"fcam_{cam_method}" + ("" if use_crf else "_nocrf") + ("" if use_size else "_nosize")


def build_fcam(cfg: RunConfig, classifier: WSOLClassifier) -> FCAM:
    torch.manual_seed(cfg.seed + 1)
    decoder = build_decoder(cfg.backbone, classifier.encoder)
    return FCAM(classifier, decoder).to(cfg.torch_device())


def train_fcam(cfg: RunConfig, classifier: WSOLClassifier | None = None,
               tag: str = "stage2") -> FCAM:
    """Stage 2: train the decoder on seeds from ``cfg.stage2.cam_method``. Returns the best model.

    ``tag`` names the checkpoint files (several stage-2 runs can share one stage-1 folder).
    """
    device = cfg.torch_device()
    distributed.init_from_env(device)
    out = Path(cfg.out_dir)
    s2 = cfg.stage2
    classifier = classifier if classifier is not None else load_classifier(cfg)
    model = build_fcam(cfg, classifier)
    cam = build_cam_method(s2.cam_method, model.classifier)
    opt = torch.optim.SGD(model.decoder.parameters(), lr=s2.lr, momentum=s2.momentum,
                          weight_decay=s2.weight_decay)
    size_loss = SizeConstraint(weight=s2.size_weight) if s2.use_size else None
    start, best, history = 0, -1.0, []
    fingerprint = run_fingerprint(cfg, 2)
    state = _resume(out / f"{tag}_last.pt", device, fingerprint)
    if state is not None:
        model.decoder.load_state_dict(state["decoder"])
        opt.load_state_dict(state["optimizer"])
        if size_loss is not None:
            size_loss.load_state_dict(state["size"])
        start, best, history = state["epoch"] + 1, state["best"], state["history"]
    if start >= s2.epochs:
        return load_fcam(cfg, classifier, tag)
    decoder = (DistributedDataParallel(model.decoder) if distributed.is_distributed()
               else model.decoder)
    train_set = cfg.data.dataset("train", train=True)
    val_set = cfg.data.dataset("val", train=False)
    base_lrs = _base_lrs(opt)
    for epoch in range(start, s2.epochs):
        _set_lr(opt, base_lrs, epoch, s2.epochs, s2.cosine)
        gen = _generator(cfg.seed, 2, epoch)
        model.train()
        t0, sums, seen = time.time(), {}, 0
        for x, y in _train_batches(cfg, train_set, s2.batch_size, gen,
                                   f"{tag} {epoch + 1}/{s2.epochs}", device):
            with _autocast(cfg, device):
                with torch.no_grad():  # one encoder forward feeds both the CAM and the decoder
                    feats, _ = model.classifier.forward_features(x)
                low = cam.from_features(x, feats[-1], model.classifier.head, y)
                seg = decoder([f.detach() for f in feats], x.shape[-2:])
            cams = upsample_maps(low.float(), x.shape[-2:])
            terms = stage2_losses(seg, cams, denormalize_255(x), s2, size_loss, gen)
            opt.zero_grad(set_to_none=True)
            terms["total"].backward()
            opt.step()
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + v.detach() * y.shape[0]
            seen += y.shape[0]
        if size_loss is not None:
            size_loss.step_epoch()
        model.eval()
        val = _validate(cfg, fcam_predictor(model), val_set, s2.batch_size, device)
        record = {"stage": 2, "tag": tag, "epoch": epoch, "seconds": time.time() - t0,
                  **{f"loss_{k}": float(v) / max(seen, 1) for k, v in sums.items()},
                  **{f"val_{k}": v for k, v in val.items()}}
        history.append(record)
        _log(out / "log.jsonl", record)
        size_state = size_loss.state_dict() if size_loss is not None else None
        best = _save_epoch(cfg, tag, {"decoder": model.decoder.state_dict()},
                           {"optimizer": opt.state_dict(), "size": size_state}, epoch, val, best,
                           history, _selection_key(val), ties_to_later=False,
                           fingerprint=fingerprint)
    return load_fcam(cfg, classifier, tag)


def load_fcam(cfg: RunConfig, classifier: WSOLClassifier | None = None, tag: str = "stage2",
              which: str = "best") -> FCAM:
    """The F-CAM model saved under ``tag`` in ``cfg.out_dir``, in eval mode."""
    classifier = classifier if classifier is not None else load_classifier(cfg)
    model = build_fcam(cfg, classifier)
    state = _load_checked(Path(cfg.out_dir) / f"{tag}_{which}.pt", cfg.torch_device(),
                          run_fingerprint(cfg, 2))
    model.decoder.load_state_dict(state["decoder"])
    return model.eval()


def read_history(out_dir: str | Path) -> list[dict]:
    """All epoch records of ``log.jsonl`` (both stages)."""
    path = Path(out_dir) / "log.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
