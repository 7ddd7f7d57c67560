#!/usr/bin/env bash
# Regenerate reports/example/ on the shared flower photos: a cold run of the MobileNets with
# real weights, a speed-only run with random weights, a warm run with TFLite exports, and
# a warm run that fine-tunes three MobileNets (--fine-tune: the top 10 layers), and a warm
# run that measures three MobileNets on every deployment target and audits the photos.
# Usage: scripts/example_report.sh [OUT_DIR]   (default: reports/example; takes ~25 min on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-reports/example}"
PHOTOS=../shared/data/flower_photos_subset
WEIGHTS=../shared/keras_home/models
CACHE="$(mktemp -d)"
MODELS="$(mktemp -d)"
trap 'rm -rf "$CACHE" "$MODELS"' EXIT
HARNESS="${HARNESS:-.venv/bin/harness}"
common=(--image-dir "$PHOTOS" --weights-dir "$WEIGHTS" --cache-dir "$CACHE" --models-dir "$MODELS"
        --results-dir "$OUT" --report-dir "$MODELS/reports" --targets none)
mkdir -p "$OUT/runs"
rm -f "$OUT"/runs/*.json
"$HARNESS" run "${common[@]}" --backbones inception_v3,mobilenet_v1_025,mobilenet_v1_075,mobilenet_v1_100,mobilenet_v2_035 \
    --repeats 10 --learning-curve
"$HARNESS" run "${common[@]}" --backbones mobilenet_v3_small --weights random
"$HARNESS" run "${common[@]}" --backbones mobilenet_v1_025,mobilenet_v1_075,mobilenet_v1_100,mobilenet_v2_035 \
    --export tflite --quantize none,float16,dynamic,int8 --repeats 10 --learning-curve
"$HARNESS" run "${common[@]}" --backbones mobilenet_v1_025,mobilenet_v2_035,mobilenet_v1_100 --fine-tune
"$HARNESS" run "${common[@]}" --backbones mobilenet_v1_025,mobilenet_v2_035,mobilenet_v1_100 \
    --targets litert,litert-int8,openvino,onnxruntime,savedmodel --audit
"$HARNESS" report --results-dir "$OUT" --output-dir "$OUT" --min-accuracy 0.87 \
    --title "harness example: flower photos on a 2-core CPU"
.venv/bin/python scripts/screenshot.py --height 2600 "$OUT/report.html" "$OUT/report.png"
