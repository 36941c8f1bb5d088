#!/usr/bin/env bash
# One prepared run on a lent GPU machine (the workplace's device tool), in the repository root:
#   1. benchmarks/segmentation_gpu.py (ViT-B chain, fp16 and bf16, against one encoder pass per box);
#   2. the CUDA training test (a seed gives the same batches and losses on GPU and CPU);
#   3. `mskcds train-seg` of the default model on the GPU, boxed into what is left of the deadline.
# The machine has torch but not this project's other packages: they travel as wheels in .whl/, and the
# pymskt label map the run synthesises images from travels in .devdata/; tools/prepare_gpu_session.sh makes
# both (docs/segmentation.md, "Training on a GPU"). Everything worth keeping is written under $OUT:
# bench.log, train.log and the model folder.
set -u
OUT=${OUT:?run on the device machine, where OUT is set}
DEADLINE_S=${DEADLINE_S:-560}     # the whole script; the device's command limit is 600 s
PHANTOMS=${PHANTOMS:-64}
SYNTHESISED=${SYNTHESISED:-12}
BATCH=${BATCH:-32}
TRAIN_ARGS=${TRAIN_ARGS:-}       # more train-seg options, e.g. "--joint-pass-pixel-mm 0.39 --grade 3 --grade 4"

python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/bench.log" 2>&1

for dtype in fp16 bf16; do
    timeout 150 python3 benchmarks/segmentation_gpu.py --dtype "$dtype" --baseline-slices 8 >> "$OUT/bench.log" 2>&1 \
        || echo "benchmark $dtype failed: $?" >> "$OUT/bench.log"
done
timeout 90 python3 -m pytest -q -p no:cacheprovider -k gpu tests/segmentation/test_training.py >> "$OUT/bench.log" 2>&1 \
    || echo "CUDA training test failed: $?" >> "$OUT/bench.log"

minutes=$(python3 -c "print(round(($DEADLINE_S - $SECONDS - 15) / 60, 2))")
echo "train-seg budget: $minutes min" > "$OUT/train.log"
python3 -m app.cli train-seg --out "$OUT/knee-sam-tiny" --device cuda --workers "$(nproc)" --minutes "$minutes" \
    --phantoms "$PHANTOMS" --validation-phantoms 3 --synthesised-per-map "$SYNTHESISED" \
    --synthesise-from .devdata/SAG_3D_DESS_RIGHT_bones_cart_men_fib-label.nrrd --label-map pymskt \
    --steps 100000 --batch-size "$BATCH" --validate-every 1000 --patience 100 --seed 0 $TRAIN_ARGS >> "$OUT/train.log" 2>&1
echo "train-seg exit $? after $SECONDS s" >> "$OUT/train.log"
rm -f "$OUT/knee-sam-tiny/training/checkpoint.pt"  # 8 files come back: the model folder and two logs
