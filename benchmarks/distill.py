"""Distillation benchmarks on Fashion-MNIST with the cpu preset (or any preset / device).

Suites (each a list of method:IPC cells; --cells picks your own):
  engine  IDC and DSA against random real images at IPC 10, IDC at IPC 1, and the
          full-data ceiling (cell `full`: the dataset's reference recipe)     (issue: engine)
  dasm    DASM (5 segments) against plain IDC at IPC 10 and 50 (and random real images at 50), with the
          sequential-without-difficulty and static-pruning ablations          (issue: DASM)

Each cell (method, IPC, seed) distills one set with that seed and evaluates it once with
the same seed, so mean +- std over seeds covers both sources of variance. Cells already in
the result table are skipped: rerun the same command to continue after an interruption.

    python benchmarks/distill.py --suite engine          # hours on a 2-core CPU
    python benchmarks/distill.py --suite dasm --seeds 0  # one seed of the DASM suite
    python benchmarks/distill.py --cells idc:10          # one method/IPC, every seed
    python benchmarks/distill.py --device cuda --preset paper --cells idc:10 --seeds 0 --stop-after 8

--stop-after M ends the distillation after M minutes at an iteration boundary, checkpointed (a
paper-preset cell is hours of GPU time; run the same command again, on the same run folders, to
go on; benchmarks/gpu_check.sh carries them from one device lease to the next).

Writes benchmarks/results/<suite>_<dataset>_<preset>.csv (`..._<preset>_cuda.csv` for runs on a GPU;
tidy rows as `dasm evaluate` writes them,
plus the distillation wall time as metric=seconds, arch="-"), and after every cell redraws
benchmarks/results/gain_<dataset>_<preset>.{png,pdf,csv}: each method minus IDC on the same seed,
per IPC, from all suites' rows.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
from benchmarks.cells import ROOT, RUNS, parse_cells, run_cell, table_path
from benchmarks.report import mean_std, signed, to_markdown, write_block
from dasm.methods import method_names
from dasm.published import PUBLISHED_ACCURACY

from dasm.analysis.figures import save_gain_figure
from dasm.data import load_dataset
from dasm.device import resolve_device
from dasm.evaluate import summarize

SUITES = {
    "engine": "random:10,idc:10,dsa:10,idc:1,random:1,full",
    "dasm": "idc:10,dasm:10,random:50,idc:50,dasm:50,static-prune:50,dasm-nodifficulty:50",
}


ORDER = method_names()   # rows in the registry's order


def suite_tables(dataset: str = "fashion-mnist", preset: str = "cpu", first: Path | None = None,
                 device: str = "cpu") -> pd.DataFrame:
    """Every suite's committed result rows for ``dataset``, ``preset`` and ``device``, as one table.

    A cell that two suites share (IDC at IPC 10) counts once per seed: the first suite's row.
    ``first``: another result file (the accuracy suite's) whose rows go before all of these.
    """
    files = [first] + [table_path(suite, dataset, preset, device) for suite in SUITES]
    tables = [pd.read_csv(f) for f in files if f is not None and f.exists()]
    if not tables:
        return pd.DataFrame(columns=["dataset", "method", "ipc", "seed", "arch", "metric", "value"])
    table = pd.concat(tables, ignore_index=True)
    return table.drop_duplicates(["method", "ipc", "seed", "arch", "metric"], keep="first", ignore_index=True)


def _order(method: str) -> int:
    return ORDER.index(method) if method in ORDER else len(ORDER)


def _minutes(results: pd.DataFrame, method: str, ipc: int, metric: str) -> str:
    times = results[(results.metric == metric) & (results.protocol == "distill") & (results.method == method)
                    & (results.ipc == ipc)].value
    if not len(times):
        return ""
    return "< 0.1 min" if times.median() < 6 else f"{times.median() / 60:.1f} min"


def distill_table(results: pd.DataFrame) -> pd.DataFrame:
    """ConvNet test accuracy (mean ± std over seeds), seeds, distillation time and, for DASM, the part of it
    its probes took, per method and IPC; the full-data row last."""
    acc = results[(results.metric == "test_acc") & (results.arch == "convnet")]
    cells = sorted({(m, int(i)) for m, i in zip(acc.method, acc.ipc)}, key=lambda c: (c[1], _order(c[0]), c[0]))
    rows = []
    for method, ipc in cells:
        values = acc[(acc.method == method) & (acc.ipc == ipc)].value
        rows.append({"method": method, "IPC": "all" if method == "full" else ipc,
                     "test accuracy (%)": mean_std(values),
                     "seeds": len(values), "distillation time": _minutes(results, method, ipc, "seconds"),
                     "of which probes": _minutes(results, method, ipc, "probe_seconds")})
    return pd.DataFrame(rows)


def distill_block() -> str:
    """docs/results.md: the distillation suites' table (Fashion-MNIST, cpu preset, CPU)."""
    return to_markdown(distill_table(suite_tables()))


def paired(results: pd.DataFrame, method: str, baseline: str, ipc: int) -> pd.Series:
    """``method`` minus ``baseline`` on the same seed (ConvNet test accuracy), one value per shared seed."""
    acc = results[(results.metric == "test_acc") & (results.arch == "convnet") & (results.ipc == ipc)]
    a = acc[acc.method == method].set_index("seed").value
    b = acc[acc.method == baseline].set_index("seed").value
    return (a - b).dropna()


def headline_table(results: pd.DataFrame, ipcs: tuple[int, ...] = (1, 10, 50)) -> pd.DataFrame:
    """Method x IPC: mean ± std test accuracy over seeds (seeds in brackets), the full-data accuracy beside."""
    acc = results[(results.metric == "test_acc") & (results.arch == "convnet")]
    methods = sorted(set(acc.method) - {"full"}, key=_order)
    rows = [{"method": m, **{f"IPC {i}": mean_std(acc[(acc.method == m) & (acc.ipc == i)].value, count=True)
                             for i in ipcs}} for m in methods]
    full = acc[acc.method == "full"].value
    rows.append({"method": "full data", **{f"IPC {i}": mean_std(full, count=True) if i == ipcs[-1] else "" for i in ipcs}})
    return pd.DataFrame(rows)


def _paired_text(diff: pd.Series) -> str:
    """``−0.10 ± 0.53 (95% interval [−1.4, +1.2], includes zero)``: a paired difference and whether it is one."""
    from dasm.analysis.by_difficulty import paired_summary

    s = paired_summary(diff)
    if s["count"] < 2:
        return f"{signed(s['mean'])} (one seed)"
    zero = "includes" if s["ci_low"] <= 0 <= s["ci_high"] else "excludes"
    return (f"{signed(s['mean'])} ± {s['std']:.2f} over {s['count']} seeds "
            f"(95% interval [{signed(s['ci_low'], 1)}, {signed(s['ci_high'], 1)}], {zero} zero)")


def headline_block() -> str:
    """The README's table and its reading: DASM against IDC paired by seed, and whether IDC saturates."""
    results = suite_tables()
    idc = results[(results.metric == "test_acc") & (results.method == "idc") & (results.arch == "convnet")]
    growth = idc[idc.ipc == 50].value.mean() - idc[idc.ipc == 10].value.mean()
    published = PUBLISHED_ACCURACY[("fashion-mnist", "idc")]
    saturation = ("its accuracy over IPC shows no plateau at this budget" if growth > 1
                  else "a plateau like the published one")
    reading = (f"DASM minus IDC, same seed: {_paired_text(paired(results, 'dasm', 'idc', 10))} at IPC 10 and "
               f"{_paired_text(paired(results, 'dasm', 'idc', 50))} at IPC 50. IDC gains {growth:.1f} points from "
               f"IPC 10 to 50 (published: {published[2] - published[1]:.1f}), {saturation}.")
    regime = table_path("regime", "fashion-mnist")
    if regime.exists():
        from benchmarks.regime import regime_reading

        reading = " ".join(filter(None, [reading, regime_reading(pd.read_csv(regime)),
                                         "The regime map and the diagnosis: `docs/diagnosis.md`."]))
    return to_markdown(headline_table(results)) + "\n\n" + reading


def cuda_block() -> str:
    """docs/gpu.md: every cell run on CUDA next to the CPU's row of the same method, IPC and seed."""
    return device_table()


def device_table(dataset: str = "fashion-mnist", preset: str = "cpu", device: str = "cuda") -> str:
    """Every cell run on ``device``, next to the CPU's row of the same method, IPC and seed (ConvNet test
    accuracy and distillation time)."""
    other, cpu = suite_tables(dataset, preset, device=device), suite_tables(dataset, preset)

    def value(table: pd.DataFrame, method: str, ipc: int, seed: int, metric: str, arch: str) -> float | None:
        hit = table[(table.method == method) & (table.ipc == ipc) & (table.seed == seed) & (table.metric == metric)
                    & (table.arch == arch)].value
        return float(hit.iloc[0]) if len(hit) else None

    acc = other[(other.metric == "test_acc") & (other.arch == "convnet")]
    cells = sorted({(m, int(i), int(s)) for m, i, s in zip(acc.method, acc.ipc, acc.seed)},
                   key=lambda c: (c[1], _order(c[0]), c[2]))
    rows = []
    for method, ipc, seed in cells:
        accs = [value(t, method, ipc, seed, "test_acc", "convnet") for t in (other, cpu)]
        mins = [value(t, method, ipc, seed, "seconds", "-") for t in (other, cpu)]
        rows.append({"method": method, "IPC": ipc, "seed": seed,
                     f"test accuracy, {device} (%)": None if accs[0] is None else f"{accs[0]:.2f}",
                     "test accuracy, cpu (%)": None if accs[1] is None else f"{accs[1]:.2f}",
                     f"distillation, {device}": None if mins[0] is None else f"{mins[0] / 60:.1f} min",
                     "distillation, cpu": None if mins[1] is None else f"{mins[1] / 60:.1f} min"})
    return to_markdown(pd.DataFrame(rows))


def gain_rows(results: pd.DataFrame) -> pd.DataFrame:
    """The rows the gain figure compares: those at the IPCs DASM was run at (the figure is about DASM
    and its ablations; a method alone with IDC at another IPC would only stretch the axis)."""
    return results[results.ipc.isin(results.loc[results.method == "dasm", "ipc"].unique())]


def write_gain_figure(dataset: str = "fashion-mnist", preset: str = "cpu", device: str = "cpu") -> list[Path]:
    """Redraw ``results/gain_<dataset>_<preset>[_<device>].{png,pdf,csv}`` (each method minus IDC on the same
    seed, at DASM's IPCs) from every suite's rows; return the files written (none before an IDC row exists)."""
    name = table_path("gain", dataset, preset, device).stem
    return save_gain_figure(gain_rows(suite_tables(dataset, preset, device=device)), ROOT / "results", name)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--preset", default="cpu")
    p.add_argument("--suite", choices=sorted(SUITES), default="engine")
    p.add_argument("--cells", help="method:ipc pairs, comma-separated (default: the suite's)")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--device", default="auto")
    p.add_argument("--runs", default=str(RUNS), help="run folders")
    p.add_argument("--stop-after", type=float, metavar="MINUTES",
                   help="stop distilling after this many minutes, checkpointed (the next run resumes)")
    args = p.parse_args()
    deadline = time.monotonic() + 60 * args.stop_after if args.stop_after is not None else None
    data = load_dataset(args.dataset, device=resolve_device(args.device))
    device = data.device.type
    table = table_path(args.suite, data.name, args.preset, device)
    for seed in [int(s) for s in args.seeds.split(",")]:
        for method, ipc in parse_cells(args.cells or SUITES[args.suite]):
            if deadline is not None and time.monotonic() > deadline:
                print(f"--stop-after {args.stop_after:g} min reached: the remaining cells wait for the next run")
                return
            done = run_cell(data, method, ipc, seed, table, preset=args.preset, runs=args.runs, deadline=deadline)
            if not done.empty:
                print(summarize(done).to_string(index=False), flush=True)
            if (data.name, args.preset, device) == ("fashion-mnist", "cpu", "cpu"):
                write_block("distill")
                write_block("headline")
            elif (data.name, args.preset, device) == ("fashion-mnist", "cpu", "cuda"):
                write_block("distill-cuda")
            write_gain_figure(data.name, args.preset, device)


if __name__ == "__main__":
    main()
