"""Render the notebook series with its outputs, so readers see the figures without running it.

Executes every numbered notebook of this folder (the ``ci`` profile unless ``FCAM_PROFILE`` says
otherwise) in order, in one run folder, with the inline backend a student's kernel uses, and
writes the executed copies to ``docs/notebooks/`` (GitHub and nbviewer display them; outside
``notebooks/`` so nbval does not run them again). The source notebooks stay stripped.

    python notebooks/render.py                    # 14 min on 2 quiet CPU cores (2026-11-26)
    python notebooks/render.py --runs runs/render --out docs/notebooks
    python notebooks/render.py --only 01 02       # these again, reusing the run folder's
                                                  # checkpoints (the notebooks print no training log)
"""

from __future__ import annotations

import argparse
import base64
import io
import os
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from PIL import Image

HERE = Path(__file__).resolve().parent


def compress_figures(nb, quality: int = 85) -> None:
    """PNG figure outputs -> JPEG (the panels are noisy images: a PNG of one is ~1 MB)."""
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "image/png" not in data:
                continue
            image = Image.open(io.BytesIO(base64.b64decode(data["image/png"]))).convert("RGB")
            buf = io.BytesIO()
            image.save(buf, format="JPEG", quality=quality)
            del data["image/png"]
            data["image/jpeg"] = base64.b64encode(buf.getvalue()).decode("ascii")


def render(out: Path, runs: Path, timeout: int = 1200, only: tuple[str, ...] = ()) -> list[Path]:
    """Execute each ``[0-9]*.ipynb`` of this folder (or those whose names start with one of
    ``only``) into ``out``; returns the written paths."""
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("FCAM_RUNS", str(runs.resolve()))
    os.environ.pop("MPLBACKEND", None)  # the kernel's default: the inline backend
    written = []
    for path in sorted(HERE.glob("[0-9]*.ipynb")):
        if only and not path.name.startswith(only):
            continue
        t0 = time.time()
        nb = nbformat.read(path, as_version=4)
        NotebookClient(nb, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(HERE)}}).execute()
        compress_figures(nb)
        nb.metadata["rendered"] = {"profile": os.environ.get("FCAM_PROFILE", "ci"),
                                   "date": time.strftime("%Y-%m-%d")}
        target = out / path.name
        nbformat.write(nb, target)
        written.append(target)
        print(f"{path.name}: {time.time() - t0:.0f} s -> {target}")
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE.parent / "docs" / "notebooks")
    parser.add_argument("--runs", type=Path, default=Path("runs/render"))
    parser.add_argument("--only", nargs="+", default=(), help="notebook name prefixes, e.g. 01 03")
    args = parser.parse_args()
    render(args.out, args.runs, only=tuple(args.only))


if __name__ == "__main__":
    main()
