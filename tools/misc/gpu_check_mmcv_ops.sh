#!/usr/bin/env bash
# One-shot GPU check of the torchvision-backed mmcv ops (~4 minutes on an
# H100/H200): (1) compiled CUDA mmcv vs the torchvision backend on the golden
# cases (NMS indices identical; RoIAlign fp32 <= 1e-5, fp16/bf16 autocast),
# (2) a pip-only install (mmcv-lite, no nvcc) trains and tests the demo
# detector on CUDA, (3) the Faster R-CNN step bench with both backends side
# by side. JSON lines and logs land in $OUT.
#
# Needs, in a .gpu/ folder in the repository root (git-ignored):
#   .gpu/setup.sh   sourced first; it must leave a compiled CUDA mmcv 2.1.0
#                   and the OpenMMLab packages importable and export
#                   PYTHONPATH (set -u: the script extends it), e.g. activate
#                   a virtualenv where `python tools/install.py
#                   --mmcv-from-source` ran on this CUDA machine (or
#                   MMCV_WHEEL=<a CUDA wheel>; docs/install.md), then
#                   export PYTHONPATH=${PYTHONPATH:-}
#   .gpu/mmcv_lite-2.1.0-*.whl   pip download --no-deps -d .gpu mmcv-lite==2.1.0
# Then, on the CUDA machine, from the repository root:
#   OUT=work_dirs/gpu_check_mmcv_ops bash tools/misc/gpu_check_mmcv_ops.sh
set -u
OUT=${OUT:-work_dirs/gpu_check_mmcv_ops}
mkdir -p "$OUT"
# shellcheck disable=SC1091
source .gpu/setup.sh  # compiled CUDA mmcv + OpenMMLab packages importable
export PYTHONPATH="$PWD:$PYTHONPATH" PYTHONWARNINGS=ignore
{ which nvcc || echo 'no nvcc on PATH'; nvidia-smi -L; } > "$OUT/env.txt" 2>&1

# 1. both backends, one process
timeout 120 python tools/misc/compare_mmcv_ops_backends.py --device cuda \
    > "$OUT/compare.jsonl" 2> "$OUT/compare.err"
echo "compare rc=$?" >> "$OUT/summary.txt"

# 2. pip-only: mmcv-lite shadows the compiled mmcv, so mmcv._ext is ours
python -m pip install -q --no-index --no-deps --target /tmp/site-lite \
    .gpu/mmcv_lite-2.1.0-*.whl
data=$OUT/demo_data
timeout 200 env PYTHONPATH="/tmp/site-lite:$PYTHONPATH" bash -c "
  python -c 'from projects.compat import ops_backend; \
             print(\"ops backend:\", ops_backend())' &&
  python tools/generate_demo_data.py --out $data --num-unlabeled 8 \
      --num-train 40 --num-val 20 --quiet &&
  for split in training validation; do
    python tools/dataset_converters/yaml_to_coco.py $data/labeled \$split \
        $data/labeled/annotations/\$split.json || exit 1
  done &&
  python tools/train.py configs/faster_rcnn/faster-rcnn_r18-scratch_fpn_1xb4-2e_competition-demo.py \
      --work-dir $OUT/det --cfg-options train_cfg.max_epochs=1 \
      train_dataloader.dataset.data_root=$data/labeled/ \
      val_dataloader.dataset.data_root=$data/labeled/ \
      test_dataloader.dataset.data_root=$data/labeled/ \
      val_evaluator.ann_file=$data/labeled/annotations/validation.json \
      test_evaluator.ann_file=$data/labeled/annotations/validation.json
" > "$OUT/pip_only_train.log" 2>&1
echo "pip-only train rc=$?" >> "$OUT/summary.txt"

# 3. the step bench, compiled vs torchvision ops interleaved
timeout 150 python tools/analysis_tools/bench_faster_rcnn_step.py \
    --mmcv-ops-ab --rounds 3 --no-count-ops \
    > "$OUT/faster_rcnn_step_ab.jsonl" 2> "$OUT/faster_rcnn_step_ab.err"
echo "bench rc=$?" >> "$OUT/summary.txt"
cat "$OUT/summary.txt" "$OUT/compare.jsonl"
grep -h 'mmcv ops backend\|coco/bbox_mAP:' "$OUT/pip_only_train.log" | tail -3
tail -1 "$OUT/faster_rcnn_step_ab.jsonl"
