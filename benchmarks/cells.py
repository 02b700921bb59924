"""One benchmark cell = (method, IPC, seed): distill with that seed, evaluate with the same seed.

The cell ``full`` (no IPC) trains on the whole training set with the dataset's reference
recipe instead: the ceiling every distilled set is compared to.

Shared by ``distill.py`` and ``accuracy.py``. A cell whose test accuracy is already in the
result table is skipped, so every suite resumes where it stopped; the run folders keep the
distillation checkpoints, so even a cell cut off half-way resumes.
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from dasm.data import Dataset
from dasm.evaluate import append_results
from dasm.runs import distill_run, evaluate_run, full_data_run

ROOT = Path(__file__).resolve().parent
RUNS = ROOT.parent / "data" / "runs" / "bench"


def device_tag(preset: str, device: str) -> str:
    """``preset`` on the CPU, ``preset_device`` elsewhere (``paper_cuda``): names result tables and run
    folders, so rows and checkpoints from two devices never count as each other's."""
    return preset if device == "cpu" else f"{preset}_{device}"


def table_path(kind: str, dataset: str, preset: str = "cpu", device: str = "cpu",
               folder: Path = ROOT / "results") -> Path:
    """``<folder>/<kind>_<dataset>_<preset>[_<device>].csv``: a suite's result table (committed ones in results/)."""
    return Path(folder) / f"{kind}_{dataset}_{device_tag(preset, device)}.csv"


def distill_timing(results: pd.DataFrame, seed: int | None = None) -> pd.DataFrame:
    """A run folder's distillation-time rows (``protocol == "distill"``; of ``seed`` if given), the last of
    each metric."""
    rows = results[(results.protocol == "distill") & ((results.seed == seed) if seed is not None else True)]
    return rows.groupby("metric").tail(1)


def parse_cells(text: str) -> list[tuple[str, int]]:
    """``"idc:10,dsa:1,full"`` -> ``[("idc", 10), ("dsa", 1), ("full", 0)]``."""
    cells = []
    for item in text.split(","):
        method, _, ipc = item.strip().partition(":")
        if method == "full" and not ipc:
            cells.append(("full", 0))
            continue
        if not ipc.isdigit():
            raise ValueError(f"Cell {item!r} is not method:ipc (e.g. idc:10) or full.")
        cells.append((method, int(ipc)))
    return cells


def has_row(table: pd.DataFrame, method: str, ipc: int | None, seed: int, arch: str = "convnet") -> bool:
    """Whether ``table`` already holds the test accuracy of this cell on ``arch`` (any IPC when None)."""
    if table.empty:
        return False
    hit = table[(table.method == method) & ((table.ipc == ipc) if ipc is not None else True) & (table.seed == seed)
                & (table.metric == "test_acc") & (table.arch == arch)]
    return len(hit) > 0


def run_cell(data: Dataset, method: str, ipc: int, seed: int, table_path: Path, *, preset: str = "cpu",
             archs: list[str] | None = None, runs: Path = RUNS, progress: bool = True,
             elsewhere: pd.DataFrame | None = None, deadline: float | None = None) -> pd.DataFrame:
    """Distill and evaluate one cell (skipping what is done) and append its rows to ``table_path``.

    ``elsewhere``: rows another suite already holds for the same dataset and preset; what was
    measured there (an architecture's accuracy, the distillation time) is not measured again:
    a cell that lacks only its cross-architecture columns trains only those networks.
    ``deadline`` (a ``time.monotonic()`` value): the distillation stops at the first iteration
    boundary after it, checkpointed, and the cell adds no rows; the next call resumes it. This is
    how a paper-preset cell spans many short device leases.
    """
    own = pd.read_csv(table_path) if table_path.exists() else pd.DataFrame(
        columns=["method", "ipc", "seed", "metric", "arch", "protocol"])
    table = own if elsewhere is None or elsewhere.empty else pd.concat([own, elsewhere], ignore_index=True)
    if method == "full":
        if has_row(table, "full", None, seed):  # its IPC is the class size, not the cell's 0
            return own
        rows = full_data_run(data, Path(runs) / data.name / device_tag(preset, data.device.type) / "full",
                             seeds=[seed], progress=progress)
        return append_results(rows.assign(preset=preset, device=data.device.type), table_path)
    missing = [a for a in archs or ["convnet"] if not has_row(table, method, ipc, seed, a)]
    if not missing:
        return own
    out = Path(runs) / data.name / device_tag(preset, data.device.type) / f"{method}-ipc{ipc}-seed{seed}"
    stop = (lambda: time.monotonic() > deadline) if deadline is not None else None
    distill_run(data, method, ipc, out, preset=preset, seed=seed, progress=progress, should_stop=stop)
    if not (out / "synthetic.pt").exists():
        print(f"{out.name}: stopped at the deadline, checkpointed; run again to resume", flush=True)
        return own
    evals = evaluate_run(out, data, preset=preset, seeds=[seed], archs=missing, progress=progress)
    timing = distill_timing(pd.read_csv(out / "results.csv"), seed)
    if not table.empty and ((table.method == method) & (table.ipc == ipc) & (table.seed == seed)
                            & (table.protocol == "distill")).any():
        timing = timing.iloc[:0]
    new = pd.concat([timing, evals], ignore_index=True).assign(preset=preset, device=data.device.type)
    return append_results(new, table_path)
