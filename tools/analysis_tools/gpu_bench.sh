#!/usr/bin/env bash
# One-shot GPU benchmark run (H100 / H200, ~7-8 minutes): every
# tools/analysis_tools/bench_*.py in full mode, JSON lines to $OUT.
#
# On a CUDA machine with the project installed (`make install`, packages
# from the index), from the repository root:
#   pip install faster-coco-eval==1.8.0   # optional, for bench_coco_eval
#   OUT=work_dirs/gpu_bench bash tools/analysis_tools/gpu_bench.sh
# Optional .gpu/ folder in the repository root (git-ignored), e.g. for a
# machine without network: .gpu/setup.sh is sourced first when present (it
# may put a compiled CUDA mmcv and the OpenMMLab packages on PYTHONPATH), and
# a .gpu/faster_coco_eval-*cp312*.whl found there is installed; fetch one with
#   pip download faster-coco-eval==1.8.0 --no-deps --only-binary=:all: \
#       --python-version 3.12 --platform manylinux_2_28_x86_64 -d .gpu/
#
# Each benchmark has its own time limit so one overrun cannot starve the
# rest; a benchmark's output (and its exit status) still lands in $OUT.
# Order: the headline comparisons first.
set -u
OUT=${OUT:-work_dirs/gpu_bench}
mkdir -p "$OUT"
if [ -f .gpu/setup.sh ]; then
    # shellcheck disable=SC1091
    source .gpu/setup.sh
fi
if ls .gpu/faster_coco_eval-*cp312*.whl >/dev/null 2>&1; then
    python -m pip install --no-deps -q .gpu/faster_coco_eval-*cp312*.whl \
        || echo 'faster-coco-eval install failed' >&2
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONWARNINGS=ignore

{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    python -c 'import torch, torchvision, mmengine, mmcv, mmdet, mmpretrain; print(torch.__version__, torchvision.__version__, mmengine.__version__, mmcv.__version__, mmdet.__version__, mmpretrain.__version__)'
    nproc
    date -u
} > "$OUT/env.txt" 2>&1

run() {  # run NAME LIMIT_S CMD...
    local name=$1 limit=$2
    shift 2
    local t0=$SECONDS
    timeout "$limit" "$@" > "$OUT/$name.jsonl" 2> "$OUT/$name.err"
    local rc=$?
    echo "{\"bench\": \"$name\", \"rc\": $rc, \"wall_s\": $((SECONDS - t0))}" \
        >> "$OUT/summary.jsonl"
    grep -h '"metric": "ratio"' "$OUT/$name.jsonl" >> "$OUT/summary.jsonl"
}

B=tools/analysis_tools
# 1. VICReg step, official recipe numerics (AMP fp16), then NHWC + bf16
run vicreg_step 100 python $B/bench_vicreg_step.py
run vicreg_step_nhwc_bf16 80 python $B/bench_vicreg_step.py \
    --channels-last --bf16 --rounds 3
# 2. Faster R-CNN step, batch 8 @800x1066, fp32 and AMP (ours, stock mmdet,
#    torchvision; op and host-sync counts first)
run faster_rcnn_step 150 python $B/bench_faster_rcnn_step.py
# 3. views per CPU core (+ device time of the GPU views, batch 128)
run views 50 python $B/bench_views.py --images 128 --rounds 5 \
    --skip-cpu-gpuviews --gpu-batch 128
# 4. end to end from PNGs, all cores
run pretrain_e2e 110 python $B/bench_pretrain_e2e.py --rounds 2
# 5. COCO evaluation (CPU)
run coco_eval 45 python $B/bench_coco_eval.py --images 1000 --rounds 2
cat "$OUT/summary.jsonl"
