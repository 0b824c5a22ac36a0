#!/usr/bin/env bash
# Throughput of the MNIST supernet recipe in 1 process x 2 threads against 2
# ranks x 1 thread (mpirun), the same global batch of 32, interleaved rounds.
# Prints each round's mean step time of the last 7 log lines, images/s and
# the 2-rank run's comm_time (the gradient averaging).
#   scripts/bench/mpi_throughput.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -tags mpi -o "$tmp/train" ./tools/train
cfg=configs/nas/spos/spos_supernet_shufflenetv2_mnist.yaml
common=(--seed 1 --no-validate --cfg-options runner.max_iters=400 log_config.interval=50 checkpoint_config.interval=100000)
mean() { grep -h '"train"' "$1"/*.log.json | tail -n 7 | grep -o "\"$2\": [0-9.]*" | awk '{s+=$2} END{printf "%.4f", s/NR}'; }
for round in $(seq "$rounds"); do
  rm -rf "$tmp/a" "$tmp/b"
  GOMAXPROCS=2 "$tmp/train" $cfg "${common[@]}" data.samples_per_gpu=32 --work-dir "$tmp/a" >/dev/null 2>&1
  mpirun --allow-run-as-root --oversubscribe -np 2 "$tmp/train" $cfg "${common[@]}" data.samples_per_gpu=16 --work-dir "$tmp/b" --launcher mpi >/dev/null 2>&1
  a=$(mean "$tmp/a" time) b=$(mean "$tmp/b" time) c=$(mean "$tmp/b" comm_time)
  awk -v r="$round" -v a="$a" -v b="$b" -v c="$c" 'BEGIN{printf "round %d: 1 process x 2 threads %.4f s/step (%.0f img/s); 2 ranks x 1 thread %.4f s/step (%.0f img/s, %.2fx), comm_time %.4f s (%.0f%%)\n", r, a, 32/a, b, 32/b, a/b, c, 100*c/b}'
done
