#!/usr/bin/env bash
# A GPU check anyone can run: zoo's speed on this machine next to plain reference loops, as one
# markdown report (device, versions, every command). Nothing is downloaded.
#
#   benchmarks/gpu_check.sh [--device cuda|cpu] [--small] [--threads N] [--out FILE] [--workdir DIR]
#
#   (a) zoo bench resnet50 mobilenet_v2, batch 256, 224 px, bf16 + channels_last, input on the
#       device, infer and train modes; the plain backend (a bare loop) and torchvision beside it.
#   (b) zoo train resnet20 --data fashion-mnist with defaults for 2 epochs (img/s, test top-1),
#       and a plain loop with the data on the device (benchmarks/reference.py tensors).
#   (c) zoo train resnet50 on 6,080 generated JPEGs at 224 px for 2 epochs (img/s per epoch), and
#       plain loops on the same folder with torchvision's loader and (when timm is importable)
#       timm's, plus the train step alone on a batch already on the device.
#
# Estimated at about 3 minutes on one H100 with 16 cores (not yet timed on one). --device cpu
# (or --small) runs the same steps on tiny settings (digits instead of Fashion-MNIST, 32 px, a few
# images): slow figures, but every step and the report are exercised; the test suite runs it so.
#
# Environment: PYTHON (default: python, else python3); ZOO, the zoo command as a shell word list
# (default: zoo when on PATH, else "$PYTHON -c '...main()'" on this source tree, which is put on
# PYTHONPATH either way); ZOO_FASHION_MNIST_DIR, read by zoo for part (b).
# Exit status: 0 when every step ran, 1 when any failed (the report says which), 2 on bad usage.
set -uo pipefail

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; }

DEVICE=cuda OUT=gpu_check.md WORK="" SMALL=0 THREADS=""
while (($#)); do
  case $1 in
    --device) DEVICE=${2:-}; shift 2 || break ;;
    --out) OUT=${2:-}; shift 2 || break ;;
    --workdir) WORK=${2:-}; shift 2 || break ;;
    --threads) THREADS=${2:-}; shift 2 || break ;;
    --small) SMALL=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "error: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[[ $DEVICE == cuda || $DEVICE == cpu ]] || { echo "error: --device must be cuda or cpu" >&2; exit 2; }
[[ -z $THREADS || $THREADS =~ ^[1-9][0-9]*$ ]] || { echo "error: --threads takes a positive integer" >&2; exit 2; }
[[ -n $OUT ]] || { echo "error: --out needs a file name" >&2; exit 2; }

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=${PYTHON:-$(command -v python || command -v python3)}
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
if [[ -n ${ZOO:-} ]]; then
  eval "ZOO_CMD=($ZOO)"
elif command -v zoo > /dev/null; then
  ZOO_CMD=(zoo)
else
  ZOO_CMD=("$PYTHON" -c 'import sys; from zoo.cli import main; sys.argv[0] = "zoo"; main()')
fi
if [[ $DEVICE == cuda ]] && ! "$PYTHON" -c 'import sys, torch; sys.exit(not torch.cuda.is_available())'; then
  echo "error: --device cuda: torch sees no CUDA device here (use --device cpu)" >&2
  exit 2
fi
if [[ -z $WORK ]]; then
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/zoo-gpu-check.XXXXXX")
  trap 'rm -rf "$WORK"' EXIT
elif [[ -e $WORK && -n $(ls -A "$WORK") ]]; then
  echo "error: --workdir $WORK is not empty" >&2
  exit 2
fi
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)

CORES=$(nproc 2> /dev/null || echo 4)
if [[ $DEVICE == cpu || $SMALL == 1 ]]; then  # every step, on tiny settings
  A_BATCH=2 A_SIZE=32 A_REPEATS=2 B_DATA=digits B_EPOCHS=1 B_BATCH=128
  C_COUNT=48 C_MIN=40 C_MAX=64 C_SIZE=32 C_BATCH=16 C_EPOCHS=1 C_REPEATS=2 WORKERS=$((CORES < 2 ? CORES : 2))
else
  A_BATCH=256 A_SIZE=224 A_REPEATS=20 B_DATA=fashion-mnist B_EPOCHS=2 B_BATCH=512
  C_COUNT=6080 C_MIN=256 C_MAX=384 C_SIZE=224 C_BATCH=128 C_EPOCHS=2 C_REPEATS=10 WORKERS=$CORES
fi
STEP_PRECISION=$([[ $DEVICE == cuda ]] && echo bf16 || echo fp32)  # as the reference loops of (c) train
THREADS_FLAG=${THREADS:+--threads $THREADS}
FAILED=0

now() { date +%s%N; }  # nanoseconds (GNU date)

# run_step PART OUTPUT(zoo|py) ARGS...: runs one command, stdout to WORK/OUTPUT (if given), stderr
# (or both) to WORK/PART.log; records "part, seconds, exit code, command" in WORK/commands.tsv.
run_step() {
  local part=$1 out=$2 kind=$3 start code shown
  shift 3
  local -a cmd
  if [[ $kind == zoo ]]; then
    cmd=("${ZOO_CMD[@]}" "$@")
    shown="zoo $*"
  else
    cmd=("$PYTHON" "$REPO/$1" "${@:2}")
    shown="python $*"
  fi
  shown=${shown//$WORK/\$WORK}
  echo "[gpu_check] $shown" >&2
  start=$(now)
  if [[ -n $out ]]; then
    "${cmd[@]}" > "$WORK/$out" 2> "$WORK/$part.log"
  else
    "${cmd[@]}" > "$WORK/$part.log" 2>&1
  fi
  code=$?
  printf '%s\t%s\t%s\t%s\n' "$part" $((($(now) - start) / 1000000000)) "$code" "$shown" >> "$WORK/commands.tsv"
  if ((code)); then
    FAILED=1
    echo "[gpu_check] exit $code; the end of $WORK/$part.log:" >&2
    tail -n 5 "$WORK/$part.log" >&2
  fi
}

BEGIN=$(now)

# (a) the networks alone: zoo bench against a plain loop on the same network, same process
for mode in infer train; do
  run_step "a-$mode" "a-$mode.jsonl" zoo bench resnet50 mobilenet_v2 --device "$DEVICE" --batch-size "$A_BATCH" \
    --image-size "$A_SIZE" --precision bf16 --channels-last --input device --mode "$mode" \
    --backend plain,torch,torchvision --repeats "$A_REPEATS" $THREADS_FLAG --json
done

# (b) small images, built-in data: zoo train with its defaults, and a plain loop with the data on the device
run_step b-zoo "" zoo train resnet20 --data "$B_DATA" --epochs "$B_EPOCHS" --device "$DEVICE" \
  --out "$WORK/b-zoo" --quiet $THREADS_FLAG
run_step b-plain b-plain.json py benchmarks/reference.py tensors --arch resnet20 --data "$B_DATA" \
  --epochs "$B_EPOCHS" --batch-size "$B_BATCH" --device "$DEVICE" $THREADS_FLAG

# (c) JPEGs decoded from disk: zoo train, torchvision's and timm's loaders, and the step alone
run_step c-folder "" py benchmarks/make_jpeg_folder.py "$WORK/jpegs" --count "$C_COUNT" --min-side "$C_MIN" \
  --max-side "$C_MAX"
run_step c-zoo "" zoo train resnet50 --data "$WORK/jpegs" --image-size "$C_SIZE" --batch-size "$C_BATCH" \
  --epochs "$C_EPOCHS" --device "$DEVICE" --out "$WORK/c-zoo" --quiet $THREADS_FLAG
run_step c-plain c-plain.json py benchmarks/reference.py folder --arch resnet50 --data "$WORK/jpegs" \
  --image-size "$C_SIZE" --batch-size "$C_BATCH" --epochs "$C_EPOCHS" --device "$DEVICE" \
  --workers "$WORKERS" $THREADS_FLAG
if "$PYTHON" -c 'import timm' 2> /dev/null; then
  run_step c-timm c-timm.json py benchmarks/reference.py folder --arch resnet50 --data "$WORK/jpegs" \
    --image-size "$C_SIZE" --batch-size "$C_BATCH" --epochs "$C_EPOCHS" --device "$DEVICE" \
    --workers "$WORKERS" --loader timm $THREADS_FLAG
else
  touch "$WORK/c-timm.skipped"
fi
run_step c-step c-step.jsonl zoo bench resnet50 --device "$DEVICE" --batch-size "$C_BATCH" --image-size "$C_SIZE" \
  --precision "$STEP_PRECISION" $([[ $DEVICE == cuda ]] && echo --channels-last) --input device --mode train \
  --backend plain,torch --repeats "$C_REPEATS" $THREADS_FLAG --json

WALL=$((($(now) - BEGIN) / 1000000000))
"$PYTHON" "$REPO/benchmarks/gpu_table.py" "$WORK" --device "$DEVICE" --data "$B_DATA" --wall "$WALL" \
  --folder "$C_COUNT JPEGs in 10 classes, sides $C_MIN-$C_MAX px, quality 90" --out "$OUT" || exit 1
echo "[gpu_check] report written to $OUT" >&2
exit "$FAILED"
