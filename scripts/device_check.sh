#!/usr/bin/env bash
# The GPU check: one prepared script for one CUDA GPU (planned to fit in 8 minutes; not yet run on one).
#   bash scripts/device_check.sh [OUT]     (default OUT: outputs/device_check; after `make install`)
#   DEVICE=cpu SLICE_EPOCHS=1 BENCH_ARGS="--repeats 1 --iterations 2 --threads 1" bash scripts/device_check.sh
#                                          (a dry run on the CPU)
# PY: the Python to use (default: the project's .venv/bin/python when it exists, else python).
# DEVICE: cuda (default), cuda:N or cpu.
# 1. the CUDA tests (tests/test_cuda.py and the CUDA cases of tests/test_networks.py);
# 2. the bench on the device: ms per training iteration of ELITE and its base detectors (MNIST,
#    CIFAR-10 and the official code's LeNets), the encoder's step against plain PyTorch, packs of
#    PACK_SIZES ELITE-SVDD runs trained as one model (default 1,8,32,128 on CUDA, 1,2 on the CPU: ms per
#    iteration, speed-up over the runs alone), and runs per hour of the 8-run Fig. 3 slice with the
#    basic, the parallel and the packed launcher (SLICE_EPOCHS epochs, default: the runner's 30);
# 3. the bench's estimate of the wall time of the paper's Fig. 3-6 (three data sets, three seeds) per
#    launcher, from the timed steps and the slice (bench.py: paper_hours).
# Data: MNIST from $ELITE_DATA_DIR (default ./data: copy MNIST into that ignored folder when the
# machine cannot reach the shared data); without it the slice runs on digits. CIFAR-10 is timed on
# CIFAR-shaped random inputs (a step's cost does not depend on the pixel values), so its 70 MB of
# images need not travel. Results: OUT/device_check.log, OUT/bench.json (the bench's JSON line).
# Exit status: 0 when every step passed, 1 when one failed (the others still run), 2 without CUDA.
set -uo pipefail
OUT=$(realpath -m "${1:-outputs/device_check}")
cd "$(dirname "$0")/.."
if [ -x .venv/bin/python ]; then PY=${PY:-.venv/bin/python}; else PY=${PY:-python}; fi
DEVICE=${DEVICE:-cuda}
if ! [[ $DEVICE =~ ^(cpu|cuda|cuda:[0-9]+)$ ]]; then
  echo "DEVICE=$DEVICE is not allowed; allowed: cuda, cuda:N, cpu" >&2; exit 2
fi
$PY -c "import elite_exp" 2>/dev/null || { echo "PY=$PY cannot import elite_exp: run make install first, or set PY" >&2; exit 2; }
BENCH_ARGS=${BENCH_ARGS:---repeats 3 --iterations 20 --warmup 3}
if [ "$DEVICE" = cpu ]; then PACK_SIZES=${PACK_SIZES:-1,2}; else PACK_SIZES=${PACK_SIZES:-1,8,32,128}; fi
export ELITE_DATA_DIR=${ELITE_DATA_DIR:-$PWD/data}
mkdir -p "$OUT"
exec > >(tee "$OUT/device_check.log") 2>&1
status=0
echo "== $(date -u +%FT%TZ) $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null)"
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available())"
if [ "$DEVICE" != cpu ]; then
  $PY -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device: nothing to check')" || exit 2
fi

echo "== CUDA tests"
$PY -m pytest -q -p no:cacheprovider tests/test_cuda.py tests/test_networks.py || { echo "FAILED: CUDA tests"; status=1; }

echo "== bench on $DEVICE"
rm -f "$OUT/bench.json"
# shellcheck disable=SC2086
if $PY scripts/bench.py --device "$DEVICE" --setups mnist,cifar,official --pack-sizes "$PACK_SIZES" $BENCH_ARGS \
     ${SLICE_EPOCHS:+--slice-epochs "$SLICE_EPOCHS"} > "$OUT/bench.out"; then
  cat "$OUT/bench.out"
  tail -n 1 "$OUT/bench.out" > "$OUT/bench.json"
  echo "== the paper's Fig. 3-6 (every run of +experiment=fig3 ... fig6 on MNIST, Fashion-MNIST, CIFAR-10): estimated wall hours"
  $PY -c "import json, sys; r = json.load(open(sys.argv[1])); e = r.get('paper_estimate')
if e is None:
    print('no estimate:', r.get('paper_estimate_missing'))
else:
    print(f\"{e['runs']['total']} runs: \" + ', '.join(f\"{k} {v}\" for k, v in e['runs'].items() if k != 'total'))
    for launcher, h in e['hours'].items():
        print(f\"{launcher:8s} about {h['total']:.2f} h (\" + ', '.join(f'{k} {v:.2f}' for k, v in h.items() if k != 'total') + ')')" \
    "$OUT/bench.json" || status=1
else
  cat "$OUT/bench.out"; echo "FAILED: bench"; status=1
fi
echo "== $(date -u +%FT%TZ) done (status $status)"
exit $status
