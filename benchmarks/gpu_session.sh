#!/usr/bin/env bash
# Every GPU check of one device session, in one go (run from the repo root on a CUDA machine):
#   bash benchmarks/gpu_session.sh [OUT]
# 1. the CUDA tests of the CRF kernel (compiled kernel vs float64, every reduction);
# 2. benchmarks/bench_crf.py --cuda-only --sweep (reductions, exp bound, sdpa peer, fma shapes);
# 3. where the image has the package's dependencies, the main job on the GPU (seed 0), with its
#    wall time beside the time of its training epochs (log.jsonl "seconds");
# 4. the Triton interpreter cases on this image's torch/Triton (the first failure, if any).
set -u
OUT=${1:-${OUT:-/tmp/gpu_session}}
mkdir -p "$OUT"
export PYTHONPATH=$PWD
nvidia-smi --query-gpu=name,clocks.max.sm,memory.total --format=csv,noheader
python -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)"
echo "== 1. CUDA tests of the CRF kernel"
if python -c "import pytest" 2>/dev/null; then
  timeout 180 python -m pytest -q -p no:cacheprovider tests/test_losses_crf.py 2>&1 | tail -8
else
  echo "pytest missing on this image: skipped"
fi
echo "== 2. bench_crf.py --cuda-only --sweep"
timeout 240 python benchmarks/bench_crf.py --cuda-only --sweep 2>&1 | tee "$OUT/bench_crf.txt"
echo "== 3. the main job on the GPU"
if python -c "import cv2, PIL, numpy, tqdm" 2>/dev/null; then
  start=$SECONDS; timeout 200 python -m fcam_nb --out "$OUT/main" \
    --no-progress 2>&1 | tail -25; echo "main job wall $((SECONDS - start)) s"
  python - "$OUT/main/log.jsonl" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
for tag in sorted({r["tag"] for r in rows}):
    secs = [r.get("seconds", 0.0) for r in rows if r["tag"] == tag]
    print(f"{tag}: {len(secs)} records, training epochs {sum(secs):.1f} s")
PY
else
  echo "the image lacks the package's dependencies (cv2/PIL/tqdm): skipped"
fi
echo "== 4. Triton interpreter cases on this image"
if python -c "import pytest" 2>/dev/null; then
  TRITON_INTERPRET=1 timeout 120 python -m pytest -x -q -p no:cacheprovider \
    tests/triton_interp_cases.py 2>&1 | grep -v "^$" | tail -30
fi
