"""Shared fixtures: the digits dataset is loaded once per session (it is tiny and bundled)."""

import os

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def digits():
    from dasm.data import load_dataset

    return load_dataset("digits")


@pytest.fixture(scope="session")
def fashion():
    """Fashion-MNIST from the real files; skipped on a machine without them, required in CI."""
    from dasm.data import DatasetNotFoundError, load_dataset

    try:
        return load_dataset("fashion-mnist", download=False)
    except DatasetNotFoundError:
        if os.environ.get("CI"):
            raise
        pytest.skip("Fashion-MNIST files not installed (apt-get install -y dataset-fashion-mnist)")

# umap-learn compiles with numba on first use: keep its cache inside the project (the Makefile does too).
os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(os.path.dirname(os.path.dirname(__file__)), "data", ".numba-cache"))
