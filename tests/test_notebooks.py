"""The guided notebooks: each runs top to bottom with small parameters, and each .ipynb is commit-ready
(no outputs, one ``parameters`` cell) and in sync with its paired py:percent file.

The parameters are overridden papermill-style: a code cell with small values is inserted right after
the cell tagged ``parameters``. The kernel is this interpreter (``sys.executable``) through a
kernelspec written to a temporary folder, so the tests never depend on which ``python3`` kernel
happens to be installed, and it runs in ``notebooks/`` like JupyterLab does.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path

import jupytext
import nbformat
import pytest

NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(p.stem for p in NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))
KERNEL_NAME = "dasm-test-python"

# Small enough for a busy 2-core CPU; every notebook still runs all of its steps.
COMMON = {"DATASET": "digits", "IPC": 2, "ITERATIONS": 1, "EVAL_EPOCHS": 2, "SEEDS": [0], "DEVICE": "cpu"}
OVERRIDES: dict[str, dict] = {
    "00_quickstart": {},
    "01_easy_sample_bias": {"REFERENCE_EPOCHS": 1, "FORGETTING_EPOCHS": 2, "SET_EPOCHS": 2,
                            "MAX_PER_CLASS": 8, "EMBEDDING": "pca", "MAX_REAL": 200},
    "02_sequential_distillation": {"SEGMENTS": 2, "PROBE_EPOCHS": 2, "AUTORUN": True},
    "03_saturation_over_ipc": {"IPCS": [1, 2], "METHODS": ["random", "idc", "dasm"], "SEGMENTS": 2,
                               "FULL_EPOCHS": 1},
    "04_cross_architecture": {"IPC": 1, "ARCHS": ["convnet", "mlp", "lenet", "resnet18"],
                              "METHODS": ["random", "idc", "dasm"], "SEGMENTS": 1},
}


def _params_index(nb) -> int:
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"expected exactly one cell tagged 'parameters', found {len(tagged)}"
    assert nb.cells[tagged[0]].cell_type == "code"
    return tagged[0]


def test_every_notebook_has_overrides():
    assert NOTEBOOKS, f"no notebooks found in {NOTEBOOKS_DIR}"
    assert set(NOTEBOOKS) == set(OVERRIDES), "add small parameters for each notebook to OVERRIDES"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_is_commit_ready(name):
    """No outputs or execution counts, one parameters cell, and the .py pair holds the same cells."""
    ipynb = NOTEBOOKS_DIR / f"{name}.ipynb"
    nb = nbformat.read(ipynb, as_version=4)
    nbformat.validate(nb)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert not cell.outputs, f"{ipynb.name} cell {i} has outputs: clear them before committing"
            assert cell.execution_count is None, f"{ipynb.name} cell {i} has an execution count"
    params = nb.cells[_params_index(nb)].source
    for key in ("DATASET", "OUT", "DEVICE"):
        assert f"{key} =" in params, f"{ipynb.name}: the parameters cell should set {key}"

    py = NOTEBOOKS_DIR / f"{name}.py"
    assert py.exists(), f"{ipynb.name} has no paired {py.name}: run `jupytext --sync notebooks/*.ipynb`"
    a, b = jupytext.read(ipynb), jupytext.read(py)

    def cells(n):
        return [(c.cell_type, c.source.strip(), tuple(c.metadata.get("tags", []))) for c in n.cells]

    assert cells(a) == cells(b), (f"{ipynb.name} and {py.name} differ: run "
                                  "`jupytext --sync notebooks/*.ipynb` and commit both")


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    """A kernelspec for this very interpreter, with the environment the notebooks expect."""
    from ipykernel.kernelspec import write_kernel_spec
    from jupyter_client.kernelspec import KernelSpecManager

    root = tmp_path_factory.mktemp("kernels")
    # One torch thread: on a busy 2-core machine two threads wait on each other and the same tiny
    # distillation takes 20-30 s instead of 1 s.
    env = {"MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "NUMBA_CACHE_DIR": os.environ.get("NUMBA_CACHE_DIR",
                                             str(NOTEBOOKS_DIR.parent / "data" / ".numba-cache"))}
    path = write_kernel_spec(str(root / KERNEL_NAME), overrides={"env": env, "display_name": "dasm tests"})
    spec = json.loads((Path(path) / "kernel.json").read_text())
    assert spec["argv"][0] == sys.executable
    return KernelSpecManager(kernel_dirs=[str(root)])


def _parameter_names(source: str) -> set[str]:
    return set(re.findall(r"^([A-Z_][A-Z0-9_]*)\s*=", source, flags=re.MULTILINE))


def _run(name: str, overrides: dict, ksm) -> None:
    """Execute notebook ``name`` with ``overrides`` (only those of ``COMMON`` that it has)."""
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOKS_DIR / f"{name}.ipynb", as_version=4)
    i = _params_index(nb)
    have = _parameter_names(nb.cells[i].source)
    unknown = set(overrides) - have - set(COMMON)
    assert not unknown, f"{name} has no parameters {sorted(unknown)} (its parameters: {sorted(have)})"
    lines = [f"{k} = {v!r}" for k, v in overrides.items() if k in have]
    cell = nbformat.v4.new_code_cell("# injected by tests/test_notebooks.py\n" + "\n".join(lines),
                                     metadata={"tags": ["injected-parameters"]})
    nb.cells.insert(i + 1, cell)
    km = KernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=ksm)
    client = NotebookClient(nb, km=km, timeout=600, kernel_name=KERNEL_NAME,
                            resources={"metadata": {"path": str(NOTEBOOKS_DIR)}})
    client.execute()  # raises nbclient.exceptions.CellExecutionError naming the failing cell


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs(name, kernel, tmp_path):
    overrides = {**COMMON, **OVERRIDES.get(name, {}), "OUT": str(tmp_path / "runs")}
    t0 = time.perf_counter()
    _run(name, overrides, kernel)
    print(f"{name}: {time.perf_counter() - t0:.1f} s")
