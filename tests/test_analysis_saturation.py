"""dasm.analysis.saturation: the table against hand-made results, a tiny resumable sweep, the plot."""

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from dasm.analysis.saturation import plot_saturation, saturation_table
from dasm.runs import grid, run_grid


def results() -> pd.DataFrame:
    """A hand-made tidy results table: 2 methods x 2 IPCs x 3 seeds, a full-data row, noise rows."""
    rows = []
    values = {("random", 1): [50, 52, 54], ("random", 10): [80, 81, 82],
              ("idc", 1): [70, 70, 73], ("idc", 10): [90, 91, 95]}
    for (method, ipc), vals in values.items():
        for seed, v in enumerate(vals):
            rows.append(dict(dataset="digits", method=method, ipc=ipc, seed=seed, arch="convnet",
                             metric="test_acc", value=v, protocol="p", device="cpu"))
            rows.append(dict(dataset="digits", method=method, ipc=ipc, seed=seed, arch="convnet",
                             metric="train_acc", value=100.0, protocol="p", device="cpu"))
            rows.append(dict(dataset="digits", method=method, ipc=ipc, seed=seed, arch="mlp",
                             metric="test_acc", value=10.0, protocol="p", device="cpu"))
        rows.append(dict(dataset="digits", method=method, ipc=ipc, seed=0, arch="-", metric="seconds",
                         value=3.0, protocol="distill", device="cpu"))
    for seed, v in enumerate([97.0, 98.0]):
        rows.append(dict(dataset="digits", method="full", ipc=144, seed=seed, arch="convnet",
                         metric="test_acc", value=v, protocol="q", device="cpu"))
    return pd.DataFrame(rows)


def test_table_has_a_row_per_method_and_ipc_with_right_stats():
    t = saturation_table(results())
    curves = t[~t["is_full"]]
    assert len(curves) == 4
    assert set(zip(curves["method"], curves["ipc"])) == {("random", 1), ("random", 10), ("idc", 1), ("idc", 10)}
    row = t[(t["method"] == "idc") & (t["ipc"] == 10)].iloc[0]
    assert row["mean"] == pytest.approx(92.0) and row["std"] == pytest.approx(np.std([90, 91, 95], ddof=1))
    assert row["count"] == 3
    full = t[t["is_full"]]
    assert len(full) == 1 and full.iloc[0]["method"] == "full" and full.iloc[0]["mean"] == pytest.approx(97.5)
    assert (t["metric"] == "test_acc").all() and (t["arch"] == "convnet").all()
    mlp = saturation_table(results(), arch="mlp")
    assert (mlp["mean"] == 10.0).all() and len(mlp) == 4  # no full row for mlp
    with pytest.raises(ValueError, match="no rows with metric='loss'"):
        saturation_table(results(), metric="loss")


def test_plot_log_axis_labels_and_lines():
    t = saturation_table(results())
    fig = plot_saturation(t)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    assert ax.get_xlabel() == "images per class (log scale)" and ax.get_ylabel() == "test accuracy (%)"
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert sorted(labels) == sorted(["random", "idc", "full data"])
    dashed = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert len(dashed) == 1 and dashed[0].get_ydata()[0] == pytest.approx(97.5)
    no_full = plot_saturation(t, full_line=False)
    assert "full data" not in [x.get_text() for x in no_full.axes[0].get_legend().get_texts()]
    # a saved CSV (or the raw results) redraws the same figure
    again = plot_saturation(results())
    assert sorted(x.get_text() for x in again.axes[0].get_legend().get_texts()) == sorted(labels)


def test_a_grid_of_random_coresets_draws_its_saturation_table(digits, tmp_path):
    table = run_grid(digits, grid(["random"], [1, 2], [0]), tmp_path, progress=False, epochs=2)
    acc = table[table["metric"] == "test_acc"]
    assert sorted(zip(acc["method"], acc["ipc"], acc["seed"])) == [("random", 1, 0), ("random", 2, 0)]
    assert acc["value"].between(0, 100).all()
    sat = saturation_table(table)
    assert sat["ipc"].tolist() == [1, 2] and (sat["count"] == 1).all()
