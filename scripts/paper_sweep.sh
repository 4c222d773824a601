#!/usr/bin/env bash
# The reproduction of the paper's Section 5 at its scale (docs/results/paper/), stage by stage in
# priority order: every stage is a resumable Hydra multirun into OUT (rerunning this script skips
# every finished run), one thread per run, one run per core (hydra/launcher=parallel).
#   OUT=/path/to/runs JOBS=2 bash scripts/paper_sweep.sh [STAGE ...]     (default: every paper stage)
# DATASETS: the stages' MNIST-like data sets, default "mnist fmnist" (DATASETS=mnist: MNIST only).
# Then: python scripts/publish_records.py OUT   (copies the records, rebuilds docs/results/paper)
# Stages beyond_report and beyond_rot (not in the default list) run what the tables of the methods
# beyond the paper need on their report data and the paper stages do not run, into BEYOND_OUT
# (default OUT-beyond); beyond_rot: ELITE, labels-only, SOEL, the plain detector and LOE_H on the
# rotation-prediction score (model=rot), seed 0, r_p 0.1 / 0.5:
#   python scripts/publish_records.py BEYOND_OUT --dest docs/results/beyond/report
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-outputs/paper}
JOBS=${JOBS:-2}
PY=${PY:-python}
CLASSES="range(10)"
KEY="elite_svdd,labels_svdd,deepsad_every_batch,ssad"   # the methods with seeds 1, 2 (and CIFAR-10)
BEYOND_OUT=${BEYOND_OUT:-${OUT%/}-beyond}
NEW="loe_hard_svdd,loe_soft_svdd,soel_svdd"                  # the contamination-robust baselines beyond the paper
DATASETS=${DATASETS:-mnist fmnist}

sweep() {  # one multirun; a failed run is recorded and the sweep goes on
  echo "== $(date -u +%H:%M:%S) $*"
  $PY -m elite_exp -m hydra/launcher=parallel hydra.launcher.n_jobs="$JOBS" threads=1 progress=false \
    out_dir="$OUT" normal_class="$CLASSES" "$@" || echo "stage exited with $?"
}

stage() {
  case "$1" in
    fig3_key)      for d in $DATASETS; do sweep data=$d sweep=r_p r_p=0.1,0.5 seed=0 method=$KEY,deepsvdd; done ;;
    fig3_key_0.3)  for d in $DATASETS; do sweep data=$d sweep=r_p r_p=0.3 seed=0 method=$KEY,deepsvdd; done ;;
    fig3_rest)     for d in $DATASETS; do
                     sweep data=$d sweep=r_p r_p=0.1,0.3,0.5 seed=0 method=elite_ae,labels_ae,deepsad,rsrae; done ;;
    fig3_seeds)    for d in $DATASETS; do sweep data=$d sweep=r_p r_p=0.1,0.5 seed=1,2 method=$KEY; done ;;
    fig6)          for d in $DATASETS; do sweep data=$d sweep=eta_m r_p=0.1 seed=0 method=elite_svdd; done ;;
    fig45)         for d in $DATASETS; do
                     sweep data=$d sweep=r_l r_l=0.004,0.012,0.02 r_p=0.1,0.5 seed=0 \
                       method=elite_svdd,labels_svdd,deepsad,deepsad_every_batch; done ;;
    fig7)          $PY -m elite_exp -m +experiment=fig7 threads=1 progress=false out_dir="$OUT" \
                     hydra/launcher=parallel hydra.launcher.n_jobs="$JOBS" || echo "stage exited with $?" ;;
    beyond_report) for d in $DATASETS; do  # report data: MNIST classes 5-9, all of FMNIST; seeds 0-2
                     [ $d = mnist ] && c=5,6,7,8,9 || c="range(10)"
                     OUT=$BEYOND_OUT CLASSES=$c sweep data=$d r_p=0.1,0.3,0.5 seed=0,1,2 method=$NEW
                     OUT=$BEYOND_OUT CLASSES=$c sweep data=$d r_p=0.1,0.3,0.5 seed=0,1,2 method=elite_svdd elite.pretrain=true
                     OUT=$BEYOND_OUT CLASSES=$c sweep data=$d r_p=0.1,0.3,0.5 seed=0,1,2 method=elite_svdd elite.loe_weight=4
                     OUT=$BEYOND_OUT CLASSES=$c sweep data=$d r_p=0.3 seed=1,2 \
                       method=elite_svdd,labels_svdd,deepsad_every_batch; done ;;
    beyond_rot)    for d in $DATASETS; do  # the rotation-prediction score on the report data, seed 0
                     [ $d = mnist ] && c=5,6,7,8,9 || c="range(10)"
                     rot() { OUT=$BEYOND_OUT CLASSES=$c sweep data=$d r_p=0.1,0.5 seed=0 model=rot "$@"; }
                     rot baseline=none; rot baseline=labels; rot baseline=soel
                     rot baseline=loe baseline.alpha=0; rot baseline=loe; done ;;
    cifar10)       sweep data=cifar10 sweep=r_p r_p=0.1,0.5 seed=0 train.epochs="${CIFAR_EPOCHS:-30}" \
                     method=elite_svdd,labels_svdd,deepsad_every_batch,ssad,deepsvdd ;;
    *) echo "unknown stage $1" >&2; return 2 ;;
  esac
}

STAGES=${*:-fig3_key fig3_key_0.3 fig3_rest fig3_seeds fig6 fig45 fig7 cifar10}
for s in $STAGES; do stage "$s"; done
echo "== $(date -u +%H:%M:%S) done"
