"""The easy-sample-bias diagnosis as a controlled measurement: test accuracy by difficulty decile.

The full-data networks of every seed first (the reference that defines difficulty, and the
ceiling), then for each seed, at IPC 10 and 50, every set with its controls: ``random`` (random real images), ``herding``,
``idc-starts`` (the very images IDC starts from), ``idc``, ``dasm`` and ``static-prune``. Each cell
distills with its seed and evaluates once with the same seed (the cpu preset's protocol); the
evaluation keeps its per-sample test predictions, so the table below is computed without
training anything again.

    python benchmarks/diagnosis.py --seeds 0           # one seed: ~5 h on one core (OMP_NUM_THREADS=1)
    python benchmarks/diagnosis.py --report            # only rebuild the table, figure and bias numbers

Resumable: a cell whose row is in the table is skipped, an interrupted one resumes from its run folder.
Writes, after every cell:

- ``benchmarks/results/diagnosis_<dataset>_cpu.csv``: each cell's set-level rows (test, train
  accuracy, distillation and training seconds);
- ``benchmarks/sets/<dataset>_cpu/``: each finished cell archived (set + test predictions,
  ``archive.py``), so everything below is rebuilt from committed files;
- ``benchmarks/results/by_difficulty_<dataset>_cpu.csv``: accuracy per decile (once two full-data
  networks exist), ``docs/figures/accuracy_by_difficulty.{png,pdf}`` and
  ``benchmarks/results/bias_<dataset>_cpu.csv``: the bias in one number per seed.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable

import pandas as pd
from benchmarks.archive import archive_cell, archive_dir, load_archive
from benchmarks.cells import ROOT, RUNS, folder_of, run_cell, table_path
from benchmarks.report import from_csv, interval_words, mean_std, signed, to_markdown, write_block

from dasm.analysis.by_difficulty import bias_contrast, by_difficulty_table, paired_summary, plot_by_difficulty
from dasm.data import Dataset, load_dataset
from dasm.device import resolve_device
from dasm.evaluate import load_predictions

METHODS = ("random", "herding", "idc-starts", "idc", "dasm", "static-prune")
IPCS = (10, 50)
FIGURE = ROOT.parent / "docs" / "figures" / "accuracy_by_difficulty"
CONTRASTS = (("idc", "idc-starts"), ("dasm", "idc"), ("static-prune", "idc"), ("idc", "random"))


def archive(data: Dataset, runs: Path, preset: str, method: str, ipc: int, seed: int) -> Path | None:
    """Archive a finished cell's set and predictions into ``benchmarks/sets`` (None if not evaluated yet)."""
    folder = folder_of(data, method, ipc, seed, preset=preset, runs=runs)
    files = [f for f in sorted((folder / "predictions").glob("*.pt"))
             if load_predictions(f)["seed"] == seed and f.name.startswith(f"{method}-")]
    if not files:
        return None
    name = f"full-seed{seed}.pt" if method == "full" else f"{method}-ipc{ipc}-seed{seed}.pt"
    return archive_cell(folder, files[-1], archive_dir(data.name, preset) / name,
                        y_train=data.y_train.cpu() if method == "full" else None)


def report(data: Dataset, preset: str = "cpu") -> pd.DataFrame | None:
    """Rebuild the by-difficulty table, its figure and the bias contrasts from the archived cells."""
    records = load_archive(archive_dir(data.name, preset))
    if sum(r["method"] == "full" for r in records) < 2 or all(r["method"] == "full" for r in records):
        print("the by-difficulty table waits for two full-data networks and a set", flush=True)
        return None
    table = by_difficulty_table(records, data.y_test.cpu(), dataset=data.name)
    table.to_csv(table_path("by_difficulty", data.name, preset), index=False)
    from dasm.analysis.figures import save_figure

    fig = plot_by_difficulty(table)
    save_figure(fig, table, FIGURE.parent, FIGURE.name)
    contrasts = pd.concat([bias_contrast(table, a, b) for a, b in CONTRASTS], ignore_index=True)
    contrasts.to_csv(table_path("bias", data.name, preset), index=False)
    if data.name == "fashion-mnist" and preset == "cpu":
        write_block("bias")
    return contrasts


def bias_table(contrasts: pd.DataFrame) -> pd.DataFrame:
    """One row per (comparison, IPC): the gain on the hardest and the easiest three deciles and their
    difference (the bias), mean ± std over seeds, with the 95% interval and p of the paired difference."""
    rows = []
    for (method, baseline, ipc), part in contrasts.groupby(["method", "baseline", "ipc"], sort=False):
        s = paired_summary(part.contrast)
        rows.append({"comparison": f"{method} − {baseline}", "IPC": int(ipc), "seeds": s["count"],
                     "hardest 3 deciles": mean_std(part.hard_gain, 2), "easiest 3 deciles": mean_std(part.easy_gain, 2),
                     "hard minus easy": mean_std(part.contrast, 2),
                     "95% interval": "" if s["count"] < 2 else f"[{signed(s['ci_low'])}, {signed(s['ci_high'])}]",
                     "p": "" if pd.isna(s["p"]) else f"{s['p']:.2f}",
                     "differs from zero": "" if s["count"] < 2 else
                     "no" if s["ci_low"] <= 0 <= s["ci_high"] else "yes"})
    return pd.DataFrame(rows)


def seeds_line(head: str, entries: list[tuple[str, pd.Series, Callable[[pd.Series], str]]]) -> str:
    """``head: label mean; ...`` over seeds, each entry with what its paired interval shows; while no entry has
    two seeds, the line says once that it has one seed and no interval (so it claims no direction)."""
    if max(paired_summary(values.dropna())["count"] for _, values, _ in entries) < 2:
        return f"{head}, 1 seed, no interval: " + \
            "; ".join(f"{label} {signed(values.mean())}" for label, values, _ in entries) + "."
    return f"{head}: " + "; ".join(f"{label} {signed(values.mean())} ({say(values)})" for label, values, say in entries) + "."


def bias_reading(contrasts: pd.DataFrame) -> list[str]:
    """One line per IPC: each comparison's gain on the hardest minus the easiest three test deciles (mean over
    seeds), and whether its paired 95% interval excludes zero."""
    return [seeds_line(f"Accuracy by difficulty (test images), IPC {ipc}, gain on the hardest minus the easiest "
                       "three deciles (points)",
                       [(f"{method} − {baseline}", part.contrast, interval_words)
                        for (method, baseline), part in at.groupby(["method", "baseline"], sort=False)])
            for ipc, at in contrasts.groupby("ipc", sort=True)]


def bias_block(dataset: str = "fashion-mnist", preset: str = "cpu") -> str:
    """docs/diagnosis.md's bias table, from the committed ``bias_<dataset>_<preset>.csv``."""
    return from_csv(table_path("bias", dataset, preset), lambda t: to_markdown(bias_table(t)),
                    "python benchmarks/diagnosis.py")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--preset", default="cpu")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--ipcs", default=",".join(map(str, IPCS)))
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--device", default="auto")
    p.add_argument("--runs", default=str(RUNS))
    p.add_argument("--report", action="store_true", help="only rebuild the table, figure and bias numbers")
    args = p.parse_args()
    data = load_dataset(args.dataset, device=resolve_device(args.device))
    if not args.report:
        table = table_path("diagnosis", data.name, args.preset, data.device.type)
        cells = [(m, int(i)) for i in args.ipcs.split(",") for m in args.methods.split(",")]
        seeds = [int(s) for s in args.seeds.split(",")]
        # the full-data networks first: they define difficulty, so seed 0's cells can be read at once
        for seed, (method, ipc) in [(s, ("full", 0)) for s in seeds] + [(s, c) for s in seeds for c in cells]:
            run_cell(data, method, ipc, seed, table, preset=args.preset, runs=Path(args.runs))
            archive(data, Path(args.runs), args.preset, method, ipc, seed)
            report(data, args.preset)
    contrasts = report(data, args.preset)
    if contrasts is not None:
        print(contrasts.to_string(index=False))


if __name__ == "__main__":
    main()
