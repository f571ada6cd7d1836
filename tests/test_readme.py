"""The "Extending" examples of docs/contributing.md run as written: a loss term, a CAM method, a backbone and
a dataset (its spec and a preset), each plugged in through one module."""

import re
from pathlib import Path

import torch

README = Path(__file__).resolve().parents[1] / "docs" / "contributing.md"


def _extending_namespace() -> dict:
    text = README.read_text()
    section = text.split("## Extending", 1)[1].split("\n## ", 1)[0]
    ns: dict = {}
    exec("import torch, torchvision\nfrom torch import nn\nfrom fcam_nb.config import *\n"
         "from fcam_nb.losses import LossTerm, TermInputs, register_loss_term\n"
         "from fcam_nb.cams.methods import CAMMethod, METHODS, register_cam_method\n"
         "from fcam_nb.models.backbones import FeatureInfo, WeightSource, register_encoder\n", ns)
    for block in re.findall(r"```python\n(.*?)```", section, re.S):
        exec(block, ns)
    return ns


def test_extending_examples_plug_in():
    from fcam_nb.cams import build_cam_method
    from fcam_nb.models import FCAM, build_classifier, build_decoder

    ns = _extending_namespace()
    try:
        probs = torch.rand(2, 2, 8, 8).softmax(dim=1)
        tv = ns["BoundaryTV"](0.5).term(ns["TermInputs"](None, probs, None, None))
        assert tv.ndim == 0 and tv > 0
        clf = build_classifier("tiny", 3).eval()
        maps = build_cam_method("gradcam_elementwise", clf)(torch.randn(2, 3, 32, 32),
                                                            torch.tensor([0, 1]))
        assert maps.shape == (2, 8, 8) and (maps >= 0).all()
        clf = build_classifier("mobilenet_v3", 3).eval()
        seg = FCAM(clf, build_decoder(clf.encoder))(torch.randn(1, 3, 96, 96))[1]
        assert seg.shape == (1, 2, 96, 96)
        from fcam_nb.models.backbones import check_encoder

        assert check_encoder(clf.encoder, 224)[-1] == (1, 960, 7, 7)  # what it declares
        cfg = ns["birds_run"]("/data/birds", "/runs/birds")
        assert cfg.data.num_classes == 12 and cfg.stage2.variant.tag == "fcam_cam"
        from fcam_nb.__main__ import parse_args
        from fcam_nb.data.specs import dataset_spec

        assert parse_args(["--dataset", "Birds12"]).dataset == "Birds12"
        assert dataset_spec("birds12").num_classes == 12
    finally:
        _forget_extensions()


def _forget_extensions() -> None:
    from fcam_nb.cams.methods import METHODS
    from fcam_nb.data.specs import DATASETS
    from fcam_nb.losses import LOSS_TERMS
    from fcam_nb.models.backbones import ENCODERS

    METHODS.pop("gradcam_elementwise", None)
    LOSS_TERMS.pop("tv", None)
    ENCODERS.pop("mobilenet_v3", None)
    DATASETS.pop("Birds12", None)


def test_the_extending_cam_method_and_loss_term_train_fcam(tmp_path):
    """One registration each makes the new method a stage-2 seed source and the new term part
    of the objective: a tiny F-CAM run on both."""
    from fcam_nb.config import Variant
    from fcam_nb.data import SyntheticConfig
    from fcam_nb.engine import read_history
    from fcam_nb.evaluate import evaluate_split, fcam_predictor
    from fcam_nb.presets import synthetic_run
    from fcam_nb.train import train_classifier, train_fcam

    _extending_namespace()
    try:
        cfg = synthetic_run(tmp_path / "data", tmp_path / "run",
                            SyntheticConfig(n_train=16, n_val=4, n_test=4, seed=3),
                            variant=Variant("gradcam_elementwise"),
                            select_methods=("gradcam_elementwise",))
        cfg = cfg.override(stage1={"epochs": 1, "batch_size": 8},
                           stage2={"epochs": 1, "batch_size": 8, "terms": {"tv": {"weight": 0.5}}},
                           progress=False, device="cpu")
        model = train_fcam(cfg.check(), train_classifier(cfg))
        assert (tmp_path / "run" / "fcam_gradcam_elementwise_best.pt").is_file()
        stage2 = [r for r in read_history(tmp_path / "run") if r["tag"].startswith("fcam")]
        assert stage2[-1]["loss_tv"] > 0 and "loss_pce" in stage2[-1]
        assert 0 <= evaluate_split(cfg, fcam_predictor(model), "test")["pxap"] <= 100
    finally:
        _forget_extensions()
