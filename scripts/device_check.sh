#!/usr/bin/env bash
# The GPU check: one prepared script, a few minutes on one CUDA GPU (budget: 8 minutes).
#   bash scripts/device_check.sh [OUT]      (default OUT: outputs/device_check)
#   DEVICE=cpu SLICE_EPOCHS=1 BENCH_ARGS="--repeats 1 --iterations 2" bash scripts/device_check.sh   (a dry run)
# 1. the CUDA tests (fast encoder = plain network on the GPU; GPU fits learn what CPU fits learn);
# 2. the bench on CUDA: ms per training iteration of ELITE and its base detectors (MNIST, CIFAR-10 and
#    the official code's LeNets), the encoder's step against plain PyTorch, and runs per hour of the
#    8-run Fig. 3 slice with the basic and the parallel launcher (device=cuda, default training);
# 3. the estimated wall time of Fig. 3 at the paper's scale from those runs per hour.
# Data: MNIST from $ELITE_DATA_DIR (copy it into an ignored folder of the checkout, e.g. data/, when
# the machine cannot reach ../shared); without it the slice runs on digits. CIFAR-10 is timed on
# CIFAR-shaped random inputs (the cost of a step does not depend on the pixel values), so its 70 MB
# of images need not travel. Results: OUT/device_check.log and OUT/bench.json (the bench's JSON line).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-outputs/device_check}
PY=${PY:-python}
DEVICE=${DEVICE:-cuda}
BENCH_ARGS=${BENCH_ARGS:---repeats 3 --iterations 20 --warmup 3}
mkdir -p "$OUT"
exec > >(tee "$OUT/device_check.log") 2>&1
export ELITE_DATA_DIR=${ELITE_DATA_DIR:-$PWD/data}
echo "== $(date -u +%FT%TZ) $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null)"
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available())"
if [ "$DEVICE" != cpu ]; then
  $PY -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device: nothing to check')" || exit 2
fi

echo "== CUDA tests"
$PY -m pytest -q -p no:cacheprovider tests/test_cuda.py tests/test_networks.py || echo "CUDA tests failed"

echo "== bench on $DEVICE"
# shellcheck disable=SC2086
$PY scripts/bench.py --device "$DEVICE" --setups mnist,cifar,official $BENCH_ARGS \
  ${SLICE_EPOCHS:+--slice-epochs "$SLICE_EPOCHS"} | tee "$OUT/bench.out"
tail -n 1 "$OUT/bench.out" > "$OUT/bench.json"

echo "== Fig. 3 at the paper's scale: 3 data sets x 10 classes x 5 r_p x 3 seeds x 11 methods = 4950 runs"
$PY - "$OUT/bench.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
s = r["sweep_slice"]
for launcher, v in s["launchers"].items():
    print(f"{launcher:8s} {v['runs_per_hour']:8.1f} runs/hour ({s['data']} slice, {s['epochs']} epochs): "
          f"Fig. 3 in about {4950 / v['runs_per_hour']:.1f} h (MNIST-sized runs; CIFAR-10 runs cost "
          f"{r['s_per_epoch'].get('cifar/deepsvdd', float('nan')) / r['s_per_epoch']['mnist/deepsvdd']:.1f}x "
          f"an MNIST run per epoch)")
PY
echo "== $(date -u +%FT%TZ) done"
