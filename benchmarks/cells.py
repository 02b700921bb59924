"""One benchmark cell = (method, IPC, seed): distill with that seed, evaluate with the same seed.

The cell ``full`` (no IPC) trains on the whole training set with the dataset's reference
recipe instead: the ceiling every distilled set is compared to.

A cell is a :class:`dasm.runs.Cell` run by :func:`dasm.runs.run_cell` into its folder under
``data/runs/bench/<preset>[_<device>]/`` (named by its settings); this module adds the suite's
result table (and keeps each evaluation's predictions on the training images, for the diagnosis):
a cell whose test accuracy is already there is skipped, so every suite resumes
where it stopped, and the run folders keep the distillation checkpoints, so even a cell cut off
half-way resumes.
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from dasm.data import Dataset
from dasm.evaluate import append_results
from dasm.runs import Cell, cell_folder, full_data_run
from dasm.runs import run_cell as run_one

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


def runs_root(runs: Path, preset: str, device: str) -> Path:
    """The folder of a suite's run folders: ``<runs>/<preset>[_<device>]``."""
    return Path(runs) / device_tag(preset, device)


def folder_of(data: Dataset, method: str, ipc: int, seed: int, *, preset: str = "cpu", runs: Path = RUNS) -> Path:
    """The run folder of a cell (``<dataset>-full`` holds every seed of the full-data networks)."""
    root = runs_root(runs, preset, data.device.type)
    return root / f"{data.name}-full" if method == "full" else cell_folder(root, data, Cell(method, ipc, seed), preset)


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
        rows = full_data_run(data, folder_of(data, "full", 0, seed, preset=preset, runs=runs), seeds=[seed],
                             progress=progress)
        return append_results(rows.assign(preset=preset, device=data.device.type), table_path)
    missing = [a for a in archs or ["convnet"] if not has_row(table, method, ipc, seed, a)]
    if not missing:
        return own
    stop = (lambda: time.monotonic() > deadline) if deadline is not None else None
    rows = run_one(data, Cell(method, ipc, seed), runs_root(runs, preset, data.device.type), preset=preset,
                   archs=missing, progress=progress, should_stop=stop, keep_train=True)
    if rows.empty:
        print(f"{method}-ipc{ipc}-seed{seed}: stopped at the deadline, checkpointed; run again to resume", flush=True)
        return own
    measured = ((table.method == method) & (table.ipc == ipc) & (table.seed == seed)
                & (table.protocol == "distill")).any() if not table.empty else False
    if measured:   # the distillation time is already in another suite's table
        rows = rows[rows.protocol != "distill"]
    return append_results(rows.drop(columns="run").assign(preset=preset, device=data.device.type), table_path)
