"""Stage-2 settings chosen on validation: one decoder per grid point, ranked by its selected
epoch's validation score."""

import pytest

from fcam_nb.checkpoint import load
from fcam_nb.data import SyntheticConfig
from fcam_nb.presets import synthetic_run
from fcam_nb.search import PAPER_GRID, grid_points, point_name, search_stage2, search_table
from fcam_nb.train import train_classifier


def test_paper_grid_and_points():
    assert PAPER_GRID["n_bg"] == (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
    assert PAPER_GRID["pce_weight"] == (1.0, 0.1)
    assert len(grid_points(PAPER_GRID)) == 14
    assert grid_points({"n_bg": (0.3, 0.6), "pce_weight": (1.0,)}) == [
        {"n_bg": 0.3, "pce_weight": 1.0}, {"n_bg": 0.6, "pce_weight": 1.0}]
    assert point_name({"n_bg": 0.3, "pce_weight": 1.0}) == "n_bg=0.3,pce_weight=1.0"
    with pytest.raises(ValueError, match="at least one value"):
        grid_points({"n_bg": ()})


def test_search_ranks_points_by_validation(tmp_path):
    cfg = synthetic_run(tmp_path / "data", tmp_path / "run",
                        SyntheticConfig(n_train=16, n_val=8, n_test=8, seed=2)).override(
        stage1={"epochs": 1, "batch_size": 8}, stage2={"epochs": 2, "batch_size": 8},
        eval_step=0.05, progress=False)
    clf = train_classifier(cfg)
    rows = search_stage2(cfg, clf, {"n_bg": (0.2, 0.6)}, epochs=1)
    assert [r["settings"]["n_bg"] for r in rows] in ([0.2, 0.6], [0.6, 0.2])
    assert rows[0]["score"] >= rows[1]["score"]
    for r in rows:
        state = load(f"{r['folder']}/fcam_cam_best.pt")
        assert state["config"]["stage2"]["n_bg"] == r["settings"]["n_bg"]
        assert state["config"]["stage2"]["epochs"] == 1
        assert r["score"] == state["metrics"]["pxap"] and r["epoch"] == state["epoch"]
        assert r["metric"] == "PxAP"  # the synthetic profile's stage 2 selects by PxAP
    assert "val PxAP" in search_table(rows).splitlines()[0]
    by_box = cfg.override(out_dir=str(tmp_path / "run_loc"), stage2={"select_by": "loc"})
    row = search_stage2(by_box, clf, {"n_bg": (0.6,)}, epochs=1)[0]
    state = load(f"{row['folder']}/fcam_cam_best.pt")
    assert row["score"] == state["metrics"]["max_box_acc"] and row["metric"] == "MaxBoxAcc"
    again = search_stage2(cfg, clf, {"n_bg": (0.2, 0.6)}, epochs=1)  # loaded, not retrained
    assert again == rows
    with pytest.raises(TypeError, match="n_neg"):
        search_stage2(cfg, clf, {"n_neg": (0.2,)})
