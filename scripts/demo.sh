#!/usr/bin/env bash
# The README demo: registry, real training on the digits scikit-learn ships, evaluation,
# validated export (TorchScript, ONNX, ORT, int8, the edge bundle) and torch-free prediction.
set -euo pipefail
OUT=demo-out
rm -rf "$OUT"
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

step zoo --version
step zoo list 'resnet*' --tag cifar
step zoo info resnet20 --image-size 32 --in-channels 1 --num-classes 10
step zoo plugins
step zoo data list
step zoo train simple_cnn_bn --data digits --out "$OUT/run"
step zoo eval "$OUT/run" --split test
step zoo export "$OUT/run" --format all --quantize int8 --bundle
step zoo data export digits "$OUT/digits"
step zoo predict "$OUT/run/export/model.int8.onnx" "$OUT/digits/test/3" --top-k 3 --batch-size 16
step python "$OUT/run/export/bundle/predict.py" "$OUT/digits/test/3/00007.png" "$OUT/digits/test/5" --top-k 1
step zoo bench "$OUT/run" --backend torch,torchscript,onnxruntime,onnxruntime-int8 --batch-size 1,8 --repeats 10
printf '\nDone. The run directory is %s/run; its export/ folder holds the predictors.\n' "$OUT"
