"""`make demo`'s table in docs/results.md, from a committed copy of the demo's results.

    python benchmarks/demo.py            # run `dasm demo` (resumes its run folders), keep its table, re-render
    python benchmarks/demo.py --table    # only re-render the block from the committed CSV

The demo itself is `dasm demo` (the same code path): IDC and DASM at IPC 10 and 30 on digits
against random coresets and the full data, 3 evaluation seeds. Its rows, plus each run's
distillation time, are kept as benchmarks/results/demo_digits_cpu.csv.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
from benchmarks.cells import ROOT, distill_timing
from benchmarks.distill import ORDER
from benchmarks.report import mean_std, to_markdown, write_block

from dasm.cli import main as dasm_main

RESULTS = ROOT / "results" / "demo_digits_cpu.csv"
RUNS = ROOT.parent / "data" / "runs" / "demo"


def collect(runs: Path = RUNS) -> pd.DataFrame:
    """The demo's evaluation rows (``demo.csv``) and each run folder's distillation time, as one table."""
    rows = pd.read_csv(runs / "demo.csv")
    timing = [distill_timing(pd.read_csv(f)) for f in sorted(runs.glob("*/results.csv"))]
    return pd.concat([rows, *timing], ignore_index=True)


def demo_table(results: pd.DataFrame) -> pd.DataFrame:
    """Test accuracy (mean ± std over seeds) per method and IPC, the full-data row last."""
    acc = results[results.metric == "test_acc"]
    ipcs = sorted(int(i) for i in acc[acc.method != "full"].ipc.unique())
    methods = sorted(set(acc.method) - {"full"}, key=lambda m: ORDER.index(m) if m in ORDER else len(ORDER))
    rows = [{"method": m, **{f"IPC {i}": mean_std(acc[(acc.method == m) & (acc.ipc == i)].value) for i in ipcs}}
            for m in methods]
    full = acc[acc.method == "full"].value
    if len(full):
        rows.append({"method": f"full data ({mean_std(full)})"})
    return pd.DataFrame(rows)


def demo_block() -> str:
    """docs/results.md: `make demo`'s table, from the committed copy of its results."""
    return to_markdown(demo_table(pd.read_csv(RESULTS)))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--table", action="store_true", help="only re-render the docs block from the committed CSV")
    args = p.parse_args()
    if not args.table:
        if dasm_main(["demo", "--out", str(RUNS)]) != 0:
            raise SystemExit("dasm demo failed")
        collect().to_csv(RESULTS, index=False)
    write_block("demo")
    print(f"docs/results.md demo block rendered from {RESULTS}")


if __name__ == "__main__":
    main()
