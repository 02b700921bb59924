"""Execute the guided notebooks and keep copies with their outputs, so a reader sees them without running them.

``make notebooks`` (``python -m benchmarks.notebooks``) runs every notebook in ``notebooks/`` top to
bottom with its quick profile (:data:`QUICK`: digits, budgets that finish in minutes on a CPU) and
writes the executed copy to ``docs/notebooks/<name>.ipynb``; the clean sources stay in
``notebooks/``. Each run's wall time goes to ``docs/notebooks/timings.csv``, and each notebook's first
cell states it (the block between ``<!-- time:start -->`` and ``<!-- time:end -->``, rewritten here).

    python -m benchmarks.notebooks                          # every notebook, digits, quick profile
    python -m benchmarks.notebooks 01_easy_sample_bias      # one
    python -m benchmarks.notebooks --dataset fashion-mnist  # time them on Fashion-MNIST (no copies kept)

The parameters are overridden papermill-style: a code cell of overrides is inserted right after the
cell tagged ``parameters`` (the tests do the same with tiny values).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ROOT / "notebooks"
COPIES = ROOT / "docs" / "notebooks"
TIMINGS = COPIES / "timings.csv"
KERNEL = "dasm-notebooks"
INJECTED = "injected-parameters"

# What `make notebooks` runs: digits, small enough for minutes a notebook on a CPU, large enough to show
# what each notebook is about.
QUICK: dict[str, dict] = {
    "00_quickstart": {"SEEDS": [0]},
    "01_easy_sample_bias": {"EMBEDDING": "pca"},
    "02_sequential_distillation": {"AUTORUN": True},
    "03_saturation_over_ipc": {"IPCS": [1, 10], "SEEDS": [0]},
    "04_cross_architecture": {"SEEDS": [0]},
}


def names() -> list[str]:
    """The notebooks in ``notebooks/``, in order."""
    return sorted(p.stem for p in SOURCES.glob("[0-9][0-9]_*.ipynb"))


def kernel_manager(folder: str | os.PathLike):
    """A kernelspec for this very interpreter in ``folder`` (one torch thread, headless matplotlib)."""
    from ipykernel.kernelspec import write_kernel_spec
    from jupyter_client.kernelspec import KernelSpecManager

    env = {"MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "NUMBA_CACHE_DIR": os.environ.get("NUMBA_CACHE_DIR", str(ROOT / "data" / ".numba-cache"))}
    write_kernel_spec(str(Path(folder) / KERNEL), overrides={"env": env, "display_name": "dasm notebooks"})
    return KernelSpecManager(kernel_dirs=[str(folder)])


def params_index(nb) -> int:
    """Index of the one cell tagged ``parameters``."""
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(tagged) != 1 or nb.cells[tagged[0]].cell_type != "code":
        raise ValueError(f"expected exactly one code cell tagged 'parameters', found {len(tagged)}")
    return tagged[0]


def parameter_names(source: str) -> set[str]:
    """The upper-case names a parameters cell assigns."""
    return set(re.findall(r"^([A-Z_][A-Z0-9_]*)\s*=", source, flags=re.MULTILINE))


def inject(nb, overrides: dict, source: str = "benchmarks/notebooks.py") -> None:
    """Insert a cell setting ``overrides`` right after the parameters cell (each must be a parameter)."""
    i = params_index(nb)
    unknown = set(overrides) - parameter_names(nb.cells[i].source)
    if unknown:
        raise ValueError(f"the notebook has no parameters {sorted(unknown)}")
    import nbformat

    lines = [f"{k} = {v!r}" for k, v in overrides.items()]
    nb.cells.insert(i + 1, nbformat.v4.new_code_cell(f"# injected by {source}\n" + "\n".join(lines),
                                                     metadata={"tags": [INJECTED]}))


def execute(name: str, overrides: dict, ksm, timeout: int = 1800):
    """Run notebook ``name`` with ``overrides`` in ``notebooks/``; return the executed notebook and seconds."""
    import nbformat
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    nb = nbformat.read(SOURCES / f"{name}.ipynb", as_version=4)
    inject(nb, overrides)
    km = KernelManager(kernel_name=KERNEL, kernel_spec_manager=ksm)
    t0 = time.perf_counter()
    NotebookClient(nb, km=km, timeout=timeout, kernel_name=KERNEL,
                   resources={"metadata": {"path": str(SOURCES)}}).execute()
    return nb, time.perf_counter() - t0


def code_cells(nb) -> list[str]:
    """The source of every code cell but an injected one: what an executed copy shares with its source."""
    return [c.source.strip() for c in nb.cells
            if c.cell_type == "code" and INJECTED not in c.get("metadata", {}).get("tags", [])]


def time_line(name: str, timings: pd.DataFrame) -> str:
    """The first cell's sentence of measured times, from ``timings.csv``."""
    def measured(dataset: str) -> str:
        rows = timings[(timings.notebook == name) & (timings.dataset == dataset)]
        if rows.empty:
            return f"not measured yet (`python -m benchmarks.notebooks {name} --dataset {dataset}`)"
        r = rows.iloc[-1]
        return f"{r.seconds / 60:.1f} min ({r.profile}, {r.machine}, {r.date})"

    return f"Measured time: digits {measured('digits')}; Fashion-MNIST {measured('fashion-mnist')}."


def stamp_time(name: str, timings: pd.DataFrame) -> None:
    """Rewrite the time block of notebook ``name``'s first cell (both files of the jupytext pair)."""
    import jupytext
    import nbformat

    path = SOURCES / f"{name}.ipynb"
    nb = nbformat.read(path, as_version=4)
    first = nb.cells[0]
    block = re.compile(r"<!-- time:start -->.*?<!-- time:end -->", flags=re.DOTALL)
    if not block.search(first.source):
        raise ValueError(f"{path.name}'s first cell has no <!-- time:start --> ... <!-- time:end --> block.")
    first.source = block.sub(f"<!-- time:start -->\n{time_line(name, timings)}\n<!-- time:end -->", first.source)
    nbformat.write(nb, path)
    jupytext.write(nb, SOURCES / f"{name}.py", fmt="py:percent")


def record(name: str, dataset: str, seconds: float, profile: str) -> pd.DataFrame:
    """Append one measured run to ``timings.csv``; return the whole table."""
    row = {"notebook": name, "dataset": dataset, "seconds": round(seconds, 1), "profile": profile,
           "machine": f"{os.cpu_count()}-core {platform.machine()} CPU", "date": datetime.date.today().isoformat()}
    table = pd.read_csv(TIMINGS) if TIMINGS.exists() else pd.DataFrame(columns=list(row))
    table = pd.concat([table, pd.DataFrame([row])], ignore_index=True)
    COPIES.mkdir(parents=True, exist_ok=True)
    table.to_csv(TIMINGS, index=False)
    return table


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("names", nargs="*", help="notebooks to run (default: all)")
    p.add_argument("--dataset", default="digits", help="digits keeps executed copies; others are only timed")
    args = p.parse_args()
    import nbformat

    with tempfile.TemporaryDirectory() as tmp:
        ksm = kernel_manager(tmp)
        for name in args.names or names():
            overrides = {**QUICK.get(name, {}), "DATASET": args.dataset}
            print(f"{name} on {args.dataset} ...", flush=True)
            nb, seconds = execute(name, overrides, ksm)
            table = record(name, args.dataset, seconds, "quick profile" if args.dataset == "digits" else "defaults")
            stamp_time(name, table)
            if args.dataset == "digits":   # the copy's first cell (markdown) takes the stamped sentence
                nb.cells[0].source = nbformat.read(SOURCES / f"{name}.ipynb", as_version=4).cells[0].source
                COPIES.mkdir(parents=True, exist_ok=True)
                nbformat.write(nb, COPIES / f"{name}.ipynb")
            print(f"  {seconds / 60:.1f} min", flush=True)


if __name__ == "__main__":
    sys.exit(main())
