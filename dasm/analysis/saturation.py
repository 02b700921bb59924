"""Saturation curves: test accuracy against images per class, per method, with the full-data line.

:func:`saturation_table` turns any tidy results table (e.g. what :func:`dasm.runs.run_grid` returns)
into mean/std/count per method and IPC, and :func:`plot_saturation` draws it on a log IPC axis. The plot reads only the table, so a saved
CSV redraws the same figure.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .style import dasm_style, method_color

_METRIC_LABELS = {"test_acc": "test accuracy (%)", "val_acc": "validation accuracy (%)",
                  "train_acc": "training accuracy (%)", "seconds": "time (s)"}


def metric_rows(results: pd.DataFrame, metric: str = "test_acc", arch: str = "convnet",
                need: tuple[str, ...] = ("method", "ipc", "metric", "value")) -> pd.DataFrame:
    """The rows of a tidy results table that hold ``metric`` for ``arch``; raises a ValueError that
    names what is missing when a column in ``need`` is absent or no row matches."""
    missing = set(need) - set(results.columns)
    if missing:
        raise ValueError(f"results lacks columns {sorted(missing)}; expected a tidy table with "
                         "dataset, method, ipc, seed, arch, metric, value (e.g. dasm.runs.read_results).")
    sel = results[results["metric"] == metric]
    if "arch" in sel.columns:
        sel = sel[sel["arch"] == arch]
    if sel.empty:
        archs = sorted(map(str, results["arch"].unique())) if "arch" in results.columns else []
        raise ValueError(f"no rows with metric={metric!r} and arch={arch!r}; the table has metrics "
                         f"{sorted(map(str, results['metric'].unique()))} and archs {archs}.")
    return sel


def saturation_table(results: pd.DataFrame, metric: str = "test_acc", arch: str = "convnet") -> pd.DataFrame:
    """Mean, std and count over seeds of ``metric`` for ``arch``, one row per (dataset, method, ipc, protocol).

    Rows of the ``full`` method (training on all real data) are kept with ``is_full=True`` so the plot
    can draw them as a horizontal line; the table also names its ``metric`` and ``arch``.
    """
    sel = metric_rows(results, metric, arch)
    keys = [k for k in ("dataset", "method", "ipc", "protocol") if k in sel.columns]
    out = (sel.assign(value=sel["value"].astype(float))
              .groupby(keys, sort=True, dropna=False)["value"].agg(["mean", "std", "count"]).reset_index())
    out["std"] = out["std"].fillna(0.0)  # one seed: no spread
    out["ipc"] = out["ipc"].astype(int)
    out["is_full"] = out["method"] == "full"
    out["metric"] = metric
    out["arch"] = arch
    order = [k for k in ("dataset", "is_full", "method", "protocol", "ipc") if k in out.columns]
    return out.sort_values(order, kind="stable").reset_index(drop=True)


def _label(metric: str) -> str:
    return _METRIC_LABELS.get(metric, metric)


def plot_saturation(table: pd.DataFrame, full_line: bool = True) -> Figure:
    """Accuracy against IPC (log x axis), one line per method with mean ± std error bars and the
    full-data accuracy as a dashed horizontal line; draws a :func:`saturation_table` (or a raw results table).
    """
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    if "mean" not in table.columns:
        table = saturation_table(table)
    if "is_full" not in table.columns:
        table = table.assign(is_full=table["method"] == "full")
    metric = str(table["metric"].iloc[0]) if "metric" in table.columns and len(table) else "test_acc"
    datasets = list(dict.fromkeys(table["dataset"])) if "dataset" in table.columns else [None]

    with dasm_style():
        width, height = plt.rcParams["figure.figsize"]
        # Each panel is widened for its legend, which sits right of the axes so it never hides a curve.
        fig, axes = plt.subplots(1, len(datasets), figsize=((width + 1.8) * len(datasets), height), squeeze=False)
        for ax, name in zip(axes[0], datasets):
            part = table if name is None else table[table["dataset"] == name]
            curves, full = part[~part["is_full"]], part[part["is_full"]]
            protocols = curves.groupby("method")["protocol"].nunique() if "protocol" in curves else None
            group_keys = ["method", "protocol"] if "protocol" in curves.columns else ["method"]
            for key, rows in curves.groupby(group_keys, sort=False):
                method = key[0] if isinstance(key, tuple) else key
                rows = rows.sort_values("ipc")
                label = method
                if protocols is not None and protocols[method] > 1:
                    label = f"{method} ({key[1]})"
                ax.errorbar(rows["ipc"], rows["mean"], yerr=rows["std"], marker="o", markersize=5, capsize=3,
                            color=method_color(method), label=label)
            if full_line and len(full):
                mean = float(np.average(full["mean"], weights=full["count"]))
                std = float(full["std"].max())
                color = method_color("full")
                ax.axhline(mean, linestyle="--", linewidth=1.2, color=color, label="full data")
                if std > 0:
                    ax.axhspan(mean - std, mean + std, color=color, alpha=0.08, linewidth=0)
            ax.set_xscale("log")
            ticks = sorted(int(i) for i in curves["ipc"].unique())
            if ticks:
                ax.set_xticks(ticks)
                ax.xaxis.set_major_formatter(ScalarFormatter())
                ax.xaxis.set_minor_formatter(NullFormatter())
                pad = 1.25
                ax.set_xlim(min(ticks) / pad, max(ticks) * pad)
            ax.set_xlabel("images per class (log scale)")
            ax.set_ylabel(_label(metric))
            arch = f" ({table['arch'].iloc[0]})" if "arch" in table.columns and len(table) else ""
            ax.set_title(f"{name}{arch}" if name is not None else f"Saturation{arch}")
            ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), title="method")
        fig.tight_layout()
    return fig


__all__ = ["metric_rows", "saturation_table", "plot_saturation"]
