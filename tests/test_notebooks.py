"""The guided notebooks: each runs top to bottom with small parameters, and each .ipynb is commit-ready
(no outputs, one ``parameters`` cell) and in sync with its paired py:percent file.

The parameters are overridden papermill-style: a code cell with small values is inserted right after
the cell tagged ``parameters``. The kernel is this interpreter (``sys.executable``) through a
kernelspec written to a temporary folder, so the tests never depend on which ``python3`` kernel
happens to be installed, and it runs in ``notebooks/`` like JupyterLab does.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import jupytext
import nbformat
import pytest

from benchmarks import notebooks as runner

NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(p.stem for p in NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))
KERNEL_NAME = "dasm-test-python"

# Small enough for a busy 2-core CPU; every notebook still runs all of its steps.
COMMON = {"DATASET": "digits", "IPC": 2, "ITERATIONS": 1, "EVAL_EPOCHS": 2, "SEEDS": [0], "DEVICE": "cpu"}
OVERRIDES: dict[str, dict] = {
    "00_quickstart": {},
    "01_easy_sample_bias": {"REFERENCE_EPOCHS": 1, "REFERENCE_WIDTH": 16, "MAX_PER_CLASS": 8, "EMBEDDING": "pca",
                            "MAX_REAL": 200},
    "02_sequential_distillation": {"SEGMENTS": 2, "PROBE_EPOCHS": 2, "AUTORUN": True},
    "03_saturation_over_ipc": {"IPCS": [1, 2], "METHODS": ["random", "idc", "dasm"], "SEGMENTS": 2,
                               "FULL_EPOCHS": 1},
    "04_cross_architecture": {"IPC": 1, "ARCHS": ["convnet", "mlp", "lenet", "resnet18"],
                              "METHODS": ["random", "idc", "dasm"], "SEGMENTS": 1},
}


def _params_index(nb) -> int:
    return runner.params_index(nb)


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
    ksm = runner.kernel_manager(tmp_path_factory.mktemp("kernels"))
    spec = json.loads((Path(ksm.kernel_dirs[0]) / runner.KERNEL / "kernel.json").read_text())
    assert spec["argv"][0] == sys.executable
    return ksm


def _run(name: str, overrides: dict, ksm) -> None:
    """Execute notebook ``name`` with ``overrides`` (only those of ``COMMON`` that it has)."""
    import nbformat

    params = nbformat.read(NOTEBOOKS_DIR / f"{name}.ipynb", as_version=4)
    have = runner.parameter_names(params.cells[runner.params_index(params)].source)
    unknown = set(overrides) - have - set(COMMON)
    assert not unknown, f"{name} has no parameters {sorted(unknown)} (its parameters: {sorted(have)})"
    runner.execute(name, {k: v for k, v in overrides.items() if k in have}, ksm, timeout=600)


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs(name, kernel, tmp_path):
    overrides = {**COMMON, **OVERRIDES.get(name, {}), "OUT": str(tmp_path / "runs")}
    t0 = time.perf_counter()
    _run(name, overrides, kernel)
    print(f"{name}: {time.perf_counter() - t0:.1f} s")


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_executed_copy_is_current_and_shows_figures(name):
    """docs/notebooks/<name>.ipynb (`make notebooks`) runs the source's code cells, has figures, states its time."""
    copy = runner.COPIES / f"{name}.ipynb"
    assert copy.exists(), f"{copy} is missing: run `make notebooks`"
    executed, source = nbformat.read(copy, as_version=4), nbformat.read(NOTEBOOKS_DIR / f"{name}.ipynb", as_version=4)
    assert runner.code_cells(executed) == runner.code_cells(source), (
        f"{copy.name} is stale: its code differs from notebooks/{name}.ipynb; run `make notebooks`")
    outputs = [o for c in executed.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert any("image/png" in o.get("data", {}) for o in outputs), f"{copy.name} shows no figure"
    assert "Measured time: digits" in source.cells[0].source and "<!-- time:start -->" in source.cells[0].source
    assert executed.cells[0].source == source.cells[0].source


def test_the_code_cell_comparison_ignores_only_the_injected_parameters():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("X = 1", metadata={"tags": ["parameters"]}),
                                         nbformat.v4.new_code_cell("print(X)")])
    before = runner.code_cells(nb)
    runner.inject(nb, {"X": 2})
    assert runner.code_cells(nb) == before and len(nb.cells) == 3
    nb.cells[2].source = "print(X + 1)"
    assert runner.code_cells(nb) != before
    with pytest.raises(ValueError, match="no parameters"):
        runner.inject(nb, {"Y": 1})
