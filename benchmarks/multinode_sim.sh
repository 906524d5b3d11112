#!/usr/bin/env bash
# Two "nodes" on one machine: two torchrun launchers, --nnodes 2, meeting through a c10d rendezvous on
# 127.0.0.1, train one run together (one process each, gloo on CPU). On real machines the same two
# commands run one per machine with --rdzv-endpoint HOST:PORT of the first (see the README).
#
#   bash benchmarks/multinode_sim.sh [OUT_DIR]        # env: PYTHON, PORT, EPOCHS
#
# Prints the run directory once (rank 0), and exits non-zero if either launcher fails.
set -euo pipefail
PYTHON=${PYTHON:-python}
PORT=${PORT:-29531}
EPOCHS=${EPOCHS:-2}
OUT=${1:-multinode-run}
launcher=(-m torch.distributed.run --nnodes 2 --nproc-per-node 1 --rdzv-backend c10d
          --rdzv-endpoint "127.0.0.1:$PORT" --rdzv-id zoo-multinode-sim)
train=(-m zoo train simple_cnn_bn --data digits --device cpu --image-size 16 --workers 0
       --epochs "$EPOCHS" --out "$OUT" --quiet)
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
"$PYTHON" "${launcher[@]}" "${train[@]}" &
node0=$!
"$PYTHON" "${launcher[@]}" "${train[@]}" &
node1=$!
status=0
wait "$node0" || status=$?
wait "$node1" || status=$?
exit "$status"
