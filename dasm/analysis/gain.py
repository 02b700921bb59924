"""Gain over a baseline: each method's accuracy minus the baseline's on the same seed, per IPC.

A method breaks the saturation (rather than shifting the curve) when its gain over the base
distiller grows with IPC. Pairing by seed removes the variance the two runs share (the seed
fixes the evaluation network's initialisation and the data order), so the spread of the
per-seed gains is the honest error bar. :func:`gain_table` pairs the rows, :func:`plot_gain`
draws each seed's gain as a dot and the mean ± std as a bar, from the table alone.
"""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from .saturation import metric_rows
from .style import dasm_style, method_color


def gain_table(results: pd.DataFrame, baseline: str = "idc", metric: str = "test_acc",
               arch: str = "convnet") -> pd.DataFrame:
    """One row per (dataset, method, ipc, seed) that has a ``baseline`` row with the same dataset,
    IPC and seed: ``value``, ``baseline_value`` and ``gain`` (their difference, in the metric's units).

    ``results`` is a tidy table (``dasm.runs.read_results`` or a benchmark CSV); the ``full`` method
    and the baseline itself are left out, and a row present twice counts once.
    """
    sel = metric_rows(results, metric, arch, need=("method", "ipc", "seed", "metric", "value"))
    sel = sel.assign(dataset=sel["dataset"] if "dataset" in sel.columns else "")
    sel = sel.drop_duplicates(["dataset", "method", "ipc", "seed"])
    sel = sel.assign(ipc=sel["ipc"].astype(int), seed=sel["seed"].astype(int), value=sel["value"].astype(float))
    base = sel[sel["method"] == baseline]
    if base.empty:
        raise ValueError(f"no {baseline!r} rows with metric={metric!r} and arch={arch!r} to compare against; "
                         f"the table's methods are {sorted(map(str, results['method'].unique()))}.")
    keys = ["dataset", "ipc", "seed"]
    others = sel[~sel["method"].isin([baseline, "full"])]
    out = others[keys + ["method", "value"]].merge(
        base[keys + ["value"]].rename(columns={"value": "baseline_value"}), on=keys, how="inner")
    out["gain"] = out["value"] - out["baseline_value"]
    out["baseline"] = baseline
    out["metric"] = metric
    out["arch"] = arch
    columns = ["dataset", "method", "ipc", "seed", "value", "baseline", "baseline_value", "gain", "metric", "arch"]
    return out[columns].sort_values(["dataset", "ipc", "method", "seed"]).reset_index(drop=True)


def gain_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Mean, std (0 for one seed) and number of seeds of the gain per (dataset, method, ipc)."""
    out = table.groupby(["dataset", "method", "ipc"], sort=True)["gain"].agg(["mean", "std", "count"]).reset_index()
    out["std"] = out["std"].fillna(0.0)
    return out


def plot_gain(table: pd.DataFrame) -> Figure:
    """Gain over the baseline per IPC: one group of columns per IPC, one column per method, each
    seed a dot and the mean ± std a bar; the dashed zero line is the baseline. Draws a :func:`gain_table`.
    """
    import matplotlib.pyplot as plt

    if table.empty:
        raise ValueError("the gain table is empty: no method shares an (IPC, seed) with the baseline.")
    summary = gain_summary(table)
    datasets = list(dict.fromkeys(table["dataset"]))
    baseline = str(table["baseline"].iloc[0])
    with dasm_style():
        width, height = plt.rcParams["figure.figsize"]
        fig, axes = plt.subplots(1, len(datasets), figsize=((width + 1.8) * len(datasets), height), squeeze=False)
        for ax, name in zip(axes[0], datasets):
            part = summary[summary["dataset"] == name]
            ipcs = sorted(part["ipc"].unique())
            methods = list(dict.fromkeys(part.sort_values("method")["method"]))
            step = 0.8 / len(methods)
            for j, method in enumerate(methods):
                color, label = method_color(method), method  # label the first column of each method only
                for i, ipc in enumerate(ipcs):
                    x = i - 0.4 + step * (j + 0.5)
                    row = part[(part["method"] == method) & (part["ipc"] == ipc)]
                    if row.empty:
                        continue
                    seeds = table[(table["dataset"] == name) & (table["method"] == method) & (table["ipc"] == ipc)]
                    ax.bar(x, row["mean"].iloc[0], width=step * 0.9, color=color, alpha=0.35, label=label)
                    label = None
                    ax.errorbar(x, row["mean"].iloc[0], yerr=row["std"].iloc[0], color=color, capsize=3)
                    ax.scatter([x] * len(seeds), seeds["gain"], color=color, s=14, zorder=3)
            ax.axhline(0.0, color=method_color(baseline), linestyle="--", linewidth=1.2, label=baseline)
            ax.set_xticks(range(len(ipcs)))
            ax.set_xticklabels([str(i) for i in ipcs])
            ax.set_xlabel("images per class")
            ax.set_ylabel(f"gain over {baseline} (points, same seed)")
            ax.set_title(f"{name} ({table['arch'].iloc[0]})" if name else f"Gain over {baseline}")
            ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), title="method")
        fig.tight_layout()
    return fig


__all__ = ["gain_table", "gain_summary", "plot_gain"]
