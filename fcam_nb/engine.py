"""The one training loop both stages share (as torchvision's references write it once).

A stage supplies a ``Stage``: the module it trains (and checkpoints), its optimizer, its step
(one batch -> named loss terms with ``total``) and its validation predictor. ``fit`` does the
rest, identically for both stages:

* one run per folder at a time (``checkpoint.run_lock``); stale temporary files removed;
* resume from ``<tag>_last.pt``, refused with a clear message when its fingerprint (settings,
  data), its classifier (stage 2: the digest of the stage-1 weights it was trained on) or, under
  a cosine schedule, its epoch count differs from this run's;
* learning rate per epoch (constant, step or cosine: ``lr_factor``) from each group's
  ``initial_lr``;
* randomness per (seed, stage, epoch): the batch order, crops, flips and seed pixels of epoch
  ``e`` come from one generator, so a resumed run is bit-identical;
* one ``log.jsonl`` record per epoch (losses, seconds, validation metrics; a record re-written
  after a resume replaces the earlier one in ``read_history``);
* one best checkpoint per validation predictor (``<tag>_best.pt``, or ``<tag>_best_<name>.pt``
  when a stage selects by several CAM methods), written when its key improves (ties keep the
  earlier epoch, as the official code), and ``<tag>_last.pt`` after every epoch, all written
  atomically by rank 0.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from fcam_nb import checkpoint, distributed
from fcam_nb.config import RunConfig
from fcam_nb.data.loader import augmented_batches, make_loader
from fcam_nb.evaluate import JointPredictor, evaluate_split_many
from fcam_nb.metric_specs import selection_metric

Step = Callable[[torch.Tensor, torch.Tensor, torch.Generator, int], dict[str, torch.Tensor]]


@dataclass
class Stage:
    """What one stage brings to ``fit``.

    number: 1 or 2 (seeds the randomness, labels the log); tag: checkpoint name prefix;
    trained: the module whose weights are checkpointed; step(x, y, generator, epoch) -> terms
    with ``total``; predictors: factory of the validation joint predictor (``{name: (maps,
    logits)}``, all names scored in one pass over the split), each name with its own best
    checkpoint (name "" -> ``<tag>_best.pt``, else ``<tag>_best_<name>.pt``; the first one's
    metrics are the record's ``val_*``); lr_schedule/step_size/gamma: see ``lr_factor``;
    extra_state: a module whose ``state_dict`` is checkpointed too (the objective's schedules);
    end_epoch(): called after each epoch's last step; classifier_id: stage 2's
    ``weights_digest`` of the frozen classifier (checked on resume); select_initial: the
    untrained model is validated first (record ``epoch`` -1, ``initial``) and competes in model
    selection, as the official code (``main_wsol.py:46-49``).
    """

    number: int
    tag: str
    trained: nn.Module
    optimizer: torch.optim.Optimizer
    epochs: int
    batch_size: int
    step: Step
    predictors: Callable[[], JointPredictor]
    train_mode: Callable[[], None]
    fingerprint: str
    lr_schedule: str = "constant"
    step_size: int = 1
    gamma: float = 0.1
    select_by: str = "loc"
    classifier_id: str | None = None
    extra_state: nn.Module | None = None
    end_epoch: Callable[[], None] | None = None
    select_initial: bool = True


def epoch_generator(seed: int, stage: int, epoch: int) -> torch.Generator:
    """The CPU generator of one (seed, stage, epoch)."""
    return torch.Generator().manual_seed(seed * 1_000_003 + stage * 10_007 + epoch)


def best_path(out: Path, tag: str, name: str = "") -> Path:
    """A stage's best checkpoint: ``<tag>_best.pt``, or ``<tag>_best_<name>.pt``."""
    return out / (f"{tag}_best_{name}.pt" if name else f"{tag}_best.pt")


def selection_key(metrics: dict, by: str = "loc") -> float:
    """Validation value to maximize (see ``selection_metric``); 0.0 when the split measures no
    localization, so every epoch ties."""
    key = selection_metric(metrics, by)
    return 0.0 if key is None else metrics[key]


def amp_dtype(cfg: RunConfig, device: torch.device) -> torch.dtype | None:
    """Mixed precision of a run: bf16 on CUDA from compute capability 8.0 (A100, L4...), fp16
    below (T4, V100: no bf16), None on the CPU or without ``cfg.amp``."""
    if not cfg.amp or device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.get_device_capability(device)[0] >= 8 else torch.float16


def autocast(cfg: RunConfig, device: torch.device):
    """Autocast to ``amp_dtype``; a no-op context on the CPU."""
    dtype = amp_dtype(cfg, device)
    return torch.autocast(device_type=device.type, dtype=dtype or torch.bfloat16,
                          enabled=dtype is not None)


def weights_digest(module: nn.Module) -> str:
    """16 hex digits naming a module's exact weights and buffers (names, dtypes, shapes, bytes)."""
    h = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def load_weights(module: nn.Module, weights, path: Path) -> None:
    """``module.load_state_dict(weights)``, refused (``CheckpointError`` naming ``path``) when
    the weights do not fit the module (other shapes or names, or not a state dict)."""
    try:
        module.load_state_dict(weights)
    except (RuntimeError, TypeError, KeyError, AttributeError, ValueError) as e:
        raise checkpoint.CheckpointError(
            f"{path}: its weights do not fit this model ({type(e).__name__}: "
            f"{str(e).splitlines()[0][:200]}); delete it to retrain, or choose another "
            f"out_dir") from None


def load_checked(path: Path, device: torch.device, fingerprint: str,
                 classifier_id: str | None = None, finished: Path | None = None) -> dict:
    """A checkpoint, refused (``CheckpointError``) when it has no fingerprint, was trained with
    other settings or data, or (``classifier_id`` given) on another stage-1 classifier. A
    missing file while ``finished`` (the stage's ``*_last.pt``) exists says what to delete."""
    if finished is not None and not path.is_file() and finished.is_file():
        prefix = finished.name.rsplit("_", 1)[0]
        raise checkpoint.CheckpointError(
            f"{path} is missing, but {finished} says this stage finished, so it will not be "
            f"trained again: restore the file, or delete {prefix}_*.pt in {path.parent} to "
            f"retrain the stage")
    state = checkpoint.load(path, device)
    saved = state.get("fingerprint")
    if saved is None:
        raise checkpoint.CheckpointError(
            f"{path} has no fingerprint (written by an older fcam_nb or another tool), so it "
            f"cannot be matched to this run: delete it to retrain, or choose another out_dir")
    if saved != fingerprint:
        raise checkpoint.CheckpointError(
            f"{path} was trained with other settings or data (fingerprint {saved}, this run "
            f"{fingerprint}); delete it or choose another out_dir"
        )
    if classifier_id is not None and state.get("classifier_id") != classifier_id:
        raise checkpoint.CheckpointError(
            f"{path} was trained on another stage-1 classifier (weights "
            f"{state.get('classifier_id')}, this run's {classifier_id}): stage 1 changed since. "
            f"Delete {path.name.rsplit('_', 1)[0]}_*.pt in {path.parent} to retrain this decoder")
    return state


def _check_epochs(path: Path, state: dict, stage: Stage) -> None:
    """Under a cosine schedule every epoch's learning rate depends on the total, so a run
    trained for N epochs cannot be extended or cut to M and equal a fresh M-epoch run; with a
    constant or step schedule it can be extended (not cut: its best epoch may lie beyond M)."""
    done = state.get("epochs")
    if done is None or done == stage.epochs:
        return
    cosine = stage.lr_schedule == "cosine"
    if cosine or stage.epochs < done:
        why = ("its cosine learning-rate schedule spans the total" if cosine
               else "its best epoch may lie beyond the shorter run")
        raise checkpoint.CheckpointError(
            f"{path} belongs to a {done}-epoch run; this run asks for {stage.epochs} epochs and "
            f"would not equal a fresh {stage.epochs}-epoch run ({why}). Ask for {done} epochs, "
            f"or delete {stage.tag}_*.pt in {path.parent} to train {stage.epochs} from scratch")


def lr_factor(epoch: int, epochs: int, schedule: str, step_size: int = 1, gamma: float = 0.1
              ) -> float:
    """The learning-rate multiplier of 0-based ``epoch``: ``constant`` 1; ``step``
    ``gamma ** (epoch // step_size)`` (the official ``MyStepLR``, stepped once per epoch);
    ``cosine`` ``(1 + cos(pi epoch / epochs)) / 2``."""
    if schedule == "constant":
        return 1.0
    if schedule == "step":
        return gamma ** (epoch // step_size)
    if schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * epoch / epochs))
    raise ValueError(f"lr schedule must be constant, step or cosine, got {schedule!r}")


def _set_lr(opt: torch.optim.Optimizer, epoch: int, stage: Stage) -> None:
    """Each group's ``initial_lr`` (stored in the group, so a resume keeps it) times the decay."""
    factor = lr_factor(epoch, stage.epochs, stage.lr_schedule, stage.step_size, stage.gamma)
    for group in opt.param_groups:
        group.setdefault("initial_lr", group["lr"])
        group["lr"] = group["initial_lr"] * factor


def _log(path: Path, record: dict) -> None:
    if distributed.is_main():
        checkpoint.append_line(path, json.dumps(record))


def fit(cfg: RunConfig, stage: Stage) -> None:
    """Train ``stage`` to ``stage.epochs`` epochs in ``cfg.out_dir``, resuming when possible."""
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if not distributed.is_main():
        return _fit(cfg, stage)
    with checkpoint.run_lock(out):
        checkpoint.remove_stale_temporaries(out)
        _fit(cfg, stage)


def _fit(cfg: RunConfig, stage: Stage) -> None:
    device = cfg.torch_device()
    out = Path(cfg.out_dir)
    start, best, history = 0, {}, []
    last = out / f"{stage.tag}_last.pt"
    if last.is_file():
        state = load_checked(last, device, stage.fingerprint, stage.classifier_id)
        _check_epochs(last, state, stage)
        load_weights(stage.trained, state["weights"], last)
        try:
            stage.optimizer.load_state_dict(state["optimizer"])
            if stage.extra_state is not None:
                stage.extra_state.load_state_dict(state["extra_state"])
            start, best, history = state["epoch"] + 1, state["best"], state["history"]
        except (KeyError, ValueError, TypeError, RuntimeError) as e:
            raise checkpoint.CheckpointError(
                f"{last}: its training state does not fit this run ({type(e).__name__}: {e}); "
                f"delete it to retrain") from None
    if start >= stage.epochs:
        return
    train_set = cfg.data.dataset("train", train=True)
    val_set = cfg.data.dataset("val", train=False)

    def validate(epoch: int, extra: dict) -> None:
        """Score every predictor on the validation split, log the record, keep the best."""
        stage.trained.eval()
        vals = evaluate_split_many(cfg, stage.predictors(), "val", batch_size=stage.batch_size,
                                   dataset=val_set)
        first = next(iter(vals.values()))
        record = {"stage": stage.number, "tag": stage.tag, "epoch": epoch, **extra,
                  **{f"val_{k}": v for k, v in first.items()}}
        if len(vals) > 1:
            record["val_by"] = vals
        history.append(record)
        _log(out / "log.jsonl", record)
        if distributed.is_main():
            for name, val in vals.items():
                key = selection_key(val, stage.select_by)
                if key > best.get(name, -1.0):  # ties keep the earlier epoch
                    best[name] = key
                    checkpoint.save_atomic({"weights": stage.trained.state_dict(),
                                            "epoch": epoch, "metrics": val,
                                            "config": cfg.to_dict(),
                                            "fingerprint": stage.fingerprint,
                                            "classifier_id": stage.classifier_id},
                                           best_path(out, stage.tag, name))

    if start == 0 and stage.select_initial:
        validate(-1, {"initial": True, "seconds": 0.0})
    scaler = torch.amp.GradScaler("cuda") if amp_dtype(cfg, device) == torch.float16 else None
    for epoch in range(start, stage.epochs):
        _set_lr(stage.optimizer, epoch, stage)
        gen = epoch_generator(cfg.seed, stage.number, epoch)
        stage.train_mode()
        t0, sums, seen = time.time(), {}, 0
        loader = make_loader(train_set, stage.batch_size // distributed.world_size(), gen,
                             cfg.data.workers, shard=True)
        bar = tqdm(loader, desc=f"{stage.tag} {epoch + 1}/{stage.epochs}", leave=False,
                   disable=not cfg.progress or not distributed.is_main())
        for x, y in augmented_batches(bar, cfg.data.input_size, gen, device):
            terms = stage.step(x, y, gen, epoch)
            stage.optimizer.zero_grad(set_to_none=True)
            if scaler is None:
                terms["total"].backward()
                stage.optimizer.step()
            else:  # fp16: scale the loss so small gradients do not underflow
                scaler.scale(terms["total"]).backward()
                scaler.step(stage.optimizer)
                scaler.update()
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + v.detach() * y.shape[0]
            seen += y.shape[0]
        if stage.end_epoch is not None:
            stage.end_epoch()
        validate(epoch, {"seconds": time.time() - t0,
                         **{f"loss_{k}": float(v) / max(seen, 1) for k, v in sums.items()}})
        if distributed.is_main():
            extra = stage.extra_state.state_dict() if stage.extra_state is not None else None
            checkpoint.save_atomic({"weights": stage.trained.state_dict(),
                                    "optimizer": stage.optimizer.state_dict(),
                                    "extra_state": extra, "epoch": epoch,
                                    "epochs": stage.epochs, "best": best, "history": history,
                                    "fingerprint": stage.fingerprint,
                                    "classifier_id": stage.classifier_id}, last)
        distributed.barrier()


def read_history(out_dir: str | Path) -> list[dict]:
    """The epoch records of ``log.jsonl`` (both stages), one per (tag, epoch): an epoch logged
    again (a run killed between its log line and its checkpoint redoes that epoch on resume)
    keeps its latest record, in the place of the first."""
    path = Path(out_dir) / "log.jsonl"
    if not path.is_file():
        return []
    records: dict[tuple, dict] = {}
    for line in path.read_text().splitlines():
        if line.strip():
            record = json.loads(line)
            records[(record.get("tag"), record.get("epoch"))] = record
    return list(records.values())
