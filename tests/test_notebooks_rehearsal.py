"""Every notebook's full-profile branch, rehearsed on the CPU for CUB (boxes only) and
OpenImages (masks only): FCAM_PROFILE=full FCAM_REHEARSAL=1, executed in order with a shared
run folder, as a student's kernel would run them (inline matplotlib backend). The ci profile's
outputs are checked by nbval separately (``pytest --nbval-lax notebooks``)."""

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9]*.ipynb"))


@pytest.fixture(scope="module")
def run_folders(tmp_path_factory):
    return {ds: tmp_path_factory.mktemp(f"nb_{ds}") for ds in ("CUB", "OpenImages")}


@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["CUB", "OpenImages"])
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_full_branch_runs_in_rehearsal(path, dataset, run_folders, monkeypatch):
    env = {"FCAM_PROFILE": "full", "FCAM_REHEARSAL": "1", "FCAM_DATASET": dataset,
           "FCAM_RUNS": str(run_folders[dataset]), "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert f"dataset: {dataset}" in text and "rehearsal" in text
    assert os.environ["FCAM_REHEARSAL"] == "1"
