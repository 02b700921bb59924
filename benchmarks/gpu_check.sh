#!/usr/bin/env bash
# The GPU checks in one command, for a short device lease: the CUDA tests, the speed suite on the
# GPU, what a paper-preset run costs there, then benchmark cells on CUDA until the time is up.
#
#   OUT=/tmp/gpu bash benchmarks/gpu_check.sh            # on a machine with a GPU and PyTorch
#   TOTAL=300 CELLS=idc:10 bash benchmarks/gpu_check.sh  # a shorter budget, other cells
#   STEPS=budget BUDGETS="100 300" bash benchmarks/gpu_check.sh
#   STEPS=paper PAPER_CELLS=idc:10 bash benchmarks/gpu_check.sh   # a paper-preset cell, one lease at a time
#   STEPS=regime bash benchmarks/gpu_check.sh                      # the regime map at paper budgets
#
# STEPS picks and orders the steps (default: tests speed paper_time cells budget). `budget` asks
# whether DASM's gain over IDC at IPC 50 grows with the number of matching steps, the question
# the cpu preset's 100 iterations cannot answer on 2 cores: for each N in BUDGETS it runs
# `tune.py` (10% of each class held out; rows in tune_fashion-mnist_cpu_cuda.csv) for IDC and
# DASM at IPC 50 with iterations=N, about 1 min of distillation per 100 iterations and method on
# an H200, plus a minute of evaluation each. `crossarch` (not run by default) evaluates IDC and
# DASM at IPC 10 on ConvNet, MLP, LeNet and ResNet-18 (accuracy_<dataset>_cpu_cuda.csv), which
# takes about 42 min an evaluation for ResNet-18 on 2 CPU cores.
#
# `paper` (not run by default) distills PAPER_CELLS with the paper preset (hours of GPU time a
# cell) for what is left of TOTAL, stopping cleanly at an iteration boundary before the limit
# (`distill.py --stop-after`). Its run folders, checkpoints included, come back as
# $OUT/paper-runs.tar.gz; put that file at data/paper-runs.tar.gz (and carry it to the next
# lease) and this script unpacks it first, so the cells go on where the last lease stopped and
# their rows land in dasm_<dataset>_paper_cuda.csv once a cell is done.
#
# `regime` (not run by default) runs benchmarks/regime.py with the paper preset: the map of
# docs/diagnosis.md (how far matching moves the images at IPC 10 and 50, and what that does) at the
# budgets the CPU cannot afford. Its points resume from their run folders, which come back in
# paper-runs.tar.gz with the paper cells'.
#
# Runs with the machine's python3 (PYTHON=...) from the repository root; Fashion-MNIST's IDX
# files must be under data/fashion-mnist (or $DASM_DATA). Every step has a time limit taken
# from what is left of TOTAL seconds; the cells resume from their checkpoints when run again.
# Result tables land in benchmarks/results/ (*_cuda.csv) and are copied to $OUT/results/ after
# every step; the logs and the cells' tables and final sets go to $OUT/gpu-check.tar.gz (their
# checkpoints stay in data/runs/bench), so a cut-off run still returns what it measured.
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu-check}
PY=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
TOTAL=${TOTAL:-540}
CELLS=${CELLS:-idc:10,dasm:10,idc:50,dasm:50}
SEEDS=${SEEDS:-0}
STEPS=${STEPS:-tests speed paper_time cells budget}
BUDGETS=${BUDGETS:-100 300}
DATASET=${DATASET:-fashion-mnist}
PAPER_CELLS=${PAPER_CELLS:-idc:10}
PAPER_RUNS=data/runs/bench/paper$([ "$DEVICE" = cpu ] || echo "_$DEVICE")   # cells.runs_root
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 MPLBACKEND=Agg
export DASM_DATA=${DASM_DATA:-$PWD/data}
LOGS=$(mktemp -d)   # archived, not returned one by one
mkdir -p "$OUT"
start=$SECONDS

pack() {   # a lease returns few, small files: the result tables as they are, the rest in one archive
    mkdir -p "$OUT/results"
    # the tables this run wrote (at most 6: 8 files come back, with the two archives)
    find benchmarks/results -maxdepth 1 -name "*_$DEVICE.csv" -newer "$LOGS/env.log" -exec cp {} "$OUT/results/" \;
    tar -czf "$OUT/gpu-check.tar.gz.tmp" -C "$LOGS" . -C "$PWD" $(ls benchmarks/results/*_"$DEVICE".png 2>/dev/null) \
        $(find data/runs/bench \( -path '*features*' -o -path '*/segment*' -o -path '*/joint' \) -prune -o \
            \( -name '*.csv' -o -name synthetic.pt \) -print 2>/dev/null)
    mv "$OUT/gpu-check.tar.gz.tmp" "$OUT/gpu-check.tar.gz"
    if [ -d "$PAPER_RUNS" ]; then   # whole run folders, checkpoints too: the next lease resumes from them
        tar -czf "$OUT/paper-runs.tar.gz.tmp" --exclude='*.png' "$PAPER_RUNS"
        mv "$OUT/paper-runs.tar.gz.tmp" "$OUT/paper-runs.tar.gz"
    fi
}

paper() {   # the paper-preset cells, stopping (checkpointed) 90 s before the step's limit (STEP_LIMIT, from step)
    "$PY" benchmarks/distill.py --suite dasm --preset paper --device "$DEVICE" --dataset "$DATASET" \
        --cells "$PAPER_CELLS" --seeds "$SEEDS" --stop-after "$(awk "BEGIN { print ($STEP_LIMIT - 90) / 60 }")"
}

budget() {   # IDC and DASM at IPC 50 on DATASET, per matching budget in BUDGETS (exported: timeout runs it)
    local n
    for n in $BUDGETS; do
        for method in idc dasm; do
            "$PY" benchmarks/tune.py --device "$DEVICE" --dataset "$DATASET" --method "$method" --ipc 50 \
                --variants "iterations=$n" --seeds "$SEEDS" --no-progress || return
        done
    done
}

export -f budget paper
export PY DEVICE BUDGETS SEEDS DATASET PAPER_CELLS

step() {   # step NAME LIMIT COMMAND...: run with min(LIMIT, time left - 20 s), log to NAME.log
    local name=$1 limit=$2; shift 2
    local left=$((TOTAL - (SECONDS - start) - 20))
    ((left < limit)) && limit=$left
    if ((limit < 10)); then echo "== $name skipped: out of time"; return; fi
    echo "== $name (limit ${limit} s)"
    local t0=$SECONDS
    STEP_LIMIT=$limit timeout "$limit" "$@" >"$LOGS/$name.log" 2>&1
    echo "   rc=$? after $((SECONDS - t0)) s"
    tail -n 12 "$LOGS/$name.log"
    pack
}

if [ -f data/paper-runs.tar.gz ]; then   # an earlier lease's paper-preset runs, carried back
    tar -xzf data/paper-runs.tar.gz && echo "resuming the paper runs in data/paper-runs.tar.gz"
fi
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 || true
  "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"; } | tee "$LOGS/env.log"
for name in $STEPS; do
    case $name in
        tests) step tests 150 "$PY" -m pytest -q -p no:cacheprovider tests/test_cuda.py tests/test_augment.py -k cuda ;;
        speed) step speed 150 "$PY" benchmarks/speed.py --device "$DEVICE" ;;
        paper_time) step paper_time 120 "$PY" benchmarks/paper_time.py --device "$DEVICE" ;;
        cells) step cells 100000 "$PY" benchmarks/distill.py --suite dasm --device "$DEVICE" --cells "$CELLS" --seeds "$SEEDS" ;;
        budget) step budget 100000 bash -c budget ;;
        paper) step paper 100000 bash -c paper ;;
        regime) step regime 100000 "$PY" benchmarks/regime.py --preset paper --device "$DEVICE" --seeds "$SEEDS" \
                --train-reference ;;
        crossarch) step crossarch 100000 "$PY" benchmarks/accuracy.py --datasets "$DATASET" --cells idc:10,dasm:10 \
                   --seeds "$SEEDS" --device "$DEVICE" ;;
        *) echo "unknown step $name (choose from: tests speed paper_time cells budget crossarch paper regime)"; exit 2 ;;
    esac
done
pack
echo "done in $((SECONDS - start)) s; results in $OUT/results and $OUT/gpu-check.tar.gz"
