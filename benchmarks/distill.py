"""Distillation benchmarks on Fashion-MNIST with the cpu preset (or any preset / device).

Suites (each a list of method:IPC cells; --cells picks your own):
  engine  IDC and DSA against random real images at IPC 10, IDC at IPC 1      (issue: engine)
  dasm    DASM (5 segments) against plain IDC at IPC 10 and 50, with the
          sequential-without-difficulty and static-pruning ablations          (issue: DASM)

Each cell (method, IPC, seed) distills one set with that seed and evaluates it once with
the same seed, so mean +- std over seeds covers both sources of variance. Cells already in
the result table are skipped: rerun the same command to continue after an interruption.

    python benchmarks/distill.py --suite engine          # hours on a 2-core CPU
    python benchmarks/distill.py --suite dasm --seeds 0  # one seed of the DASM suite
    python benchmarks/distill.py --cells idc:10          # one method/IPC, every seed
    python benchmarks/distill.py --device cuda --preset paper

Writes benchmarks/results/<suite>_<dataset>_<preset>.csv (tidy rows as `dasm evaluate` writes them,
plus the distillation wall time as metric=seconds, arch="-").
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from dasm.data import load_dataset
from dasm.device import resolve_device
from dasm.evaluate import append_results, summarize
from dasm.runs import distill_run, evaluate_run

ROOT = Path(__file__).resolve().parent
SUITES = {
    "engine": ["random:10", "idc:10", "dsa:10", "idc:1", "random:1"],
    "dasm": ["idc:10", "dasm:10", "idc:50", "dasm:50", "static-prune:50", "dasm-nodifficulty:50"],
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--preset", default="cpu")
    p.add_argument("--suite", choices=sorted(SUITES), default="engine")
    p.add_argument("--cells", help="method:ipc pairs, comma-separated (default: the suite's)")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--device", default="auto")
    p.add_argument("--runs", default=str(ROOT.parent / "data" / "runs" / "bench"), help="run folders")
    args = p.parse_args()
    device = resolve_device(args.device)
    data = load_dataset(args.dataset, device=device)
    table = ROOT / "results" / f"{args.suite}_{data.name}_{args.preset}.csv"
    cells = args.cells or ",".join(SUITES[args.suite])
    done = pd.read_csv(table) if table.exists() else pd.DataFrame(columns=["method", "ipc", "seed", "metric"])
    for seed in [int(s) for s in args.seeds.split(",")]:
        for cell in cells.split(","):
            method, ipc = cell.split(":")[0], int(cell.split(":")[1])
            hit = done[(done.method == method) & (done.ipc == ipc) & (done.seed == seed) & (done.metric == "test_acc")]
            if len(hit):
                continue
            out = Path(args.runs) / data.name / args.preset / f"{method}-ipc{ipc}-seed{seed}"
            distill_run(data, method, ipc, out, preset=args.preset, seed=seed)
            evaluate_run(out, data, preset=args.preset, seeds=[seed])
            rows = pd.read_csv(out / "results.csv").assign(preset=args.preset, device=device.type)
            rows = rows[(rows.metric != "seconds") | (rows.arch == "-") | (rows.protocol != "distill")]
            done = append_results(rows, table)
            print(summarize(done).to_string(index=False), flush=True)


if __name__ == "__main__":
    main()
