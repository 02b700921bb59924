"""The regime map: how far matching moves a set from where it started, and what that does to it.

Two numbers describe a distilled set against its starts (``starts.pt`` in its run folder):

- :func:`moved`: the mean per-image L2 distance (pixel space, [0, 1] units, over a stored image's
  pixels) between the set and its starts;
- :func:`diversity`: the mean pairwise distance, within a class, of a fixed reference network's
  features of the set's (decoded) images, averaged over classes; collapsing images lower it.

:func:`plot_regime` draws the map from a tidy table (one row per point and metric): x = distance
moved, y = validation accuracy minus the starts', one panel per IPC, one line per method, a point's
marker its lr_img multiple (hollow: more iterations), bars one std over seeds.
"""

from __future__ import annotations

import pandas as pd
import torch
from matplotlib.figure import Figure
from torch import Tensor, nn

from ..coreset import embed_dataset
from ..synthetic import SyntheticSet
from .style import dasm_style, method_color


def moved(syn: SyntheticSet, starts: SyntheticSet) -> float:
    """Mean over stored images of the L2 distance between ``syn`` and ``starts`` (same layout)."""
    if syn.images.shape != starts.images.shape or not torch.equal(syn.labels.cpu(), starts.labels.cpu()):
        raise ValueError(f"the set ({tuple(syn.images.shape)}) and its starts ({tuple(starts.images.shape)}) "
                         "do not share a layout; give the starts.pt of the same run.")
    diff = syn.images.detach().cpu().float() - starts.images.detach().cpu().float()
    return float(diff.flatten(1).norm(dim=1).mean())


def diversity(features: Tensor, labels: Tensor) -> float:
    """Mean over classes of the mean pairwise Euclidean distance between the class's ``features`` rows."""
    per_class = []
    for c in torch.unique(labels):
        f = features[labels == c].float()
        if len(f) < 2:
            continue
        d = torch.cdist(f, f)
        per_class.append(float(d.sum() / (len(f) * (len(f) - 1))))
    if not per_class:
        raise ValueError("diversity needs at least two images of some class.")
    return sum(per_class) / len(per_class)


def set_diversity(syn: SyntheticSet, net: nn.Module, normalize) -> float:
    """:func:`diversity` of ``syn``'s decoded images in ``net``'s embedding (``net.embed``)."""
    device = next(net.parameters()).device
    x, y = syn.decoded()
    return diversity(embed_dataset(net, x.detach().to(device), normalize).cpu(), y.cpu())


def regime_points(table: pd.DataFrame) -> pd.DataFrame:
    """One row per point (method, IPC, seed, lr_img, iterations, init) with its metrics as columns and
    ``gain`` = validation accuracy minus the starts'."""
    keys = [k for k in ("dataset", "method", "ipc", "seed", "init", "lr_img", "lr_mult", "iterations", "it_mult")
            if k in table.columns]
    wide = table.pivot_table(index=keys, columns="metric", values="value", aggfunc="mean").reset_index()
    wide.columns.name = None
    if {"val_acc", "starts_val_acc"} <= set(wide.columns):
        wide["gain"] = wide["val_acc"] - wide["starts_val_acc"]
    return wide


# A point's marker says how strong its matching was against the preset: the shape its lr_img multiple, a
# hollow marker more outer iterations than the preset's.
LR_MARKERS = {0.25: "v", 1.0: "o", 4.0: "^"}
OTHER_MARKER = "s"


def lr_marker(lr_mult: float) -> str:
    """The marker of a point whose lr_img is ``lr_mult`` times the preset's."""
    return LR_MARKERS.get(round(float(lr_mult), 6), OTHER_MARKER)


def _line_of(points: pd.DataFrame) -> pd.DataFrame:
    """A method's points averaged over seeds (with the std of ``moved`` and ``gain``), ordered by distance moved."""
    keys = [k for k in ("lr_img", "lr_mult", "iterations", "it_mult") if k in points.columns]
    line = points.groupby(keys, as_index=False).agg(moved=("moved", "mean"), moved_std=("moved", "std"),
                                                   gain=("gain", "mean"), gain_std=("gain", "std"))
    if "lr_mult" not in line:
        line["lr_mult"] = 1.0
    if "it_mult" not in line:
        line["it_mult"] = 1
    return line.fillna({"moved_std": 0.0, "gain_std": 0.0}).sort_values("moved")


def plot_regime(table: pd.DataFrame) -> Figure:
    """Validation accuracy minus the starts' against the distance moved: one column of panels per IPC, one
    row per kind of start (real images; noise, where matching does all the work), one line per method
    through its points (mean over seeds, bars one std where there are several) ordered by distance. A
    point's marker gives its lr_img against the preset's (v x0.25, o x1, ^ x4), hollow for more iterations."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    pts = regime_points(table).dropna(subset=["moved", "gain"])
    if pts.empty:
        raise ValueError("no point has both its distance moved and its validation gain yet.")
    pts = pts.assign(start=(pts["init"] == "noise").map({True: "noise", False: "real images"})
                     if "init" in pts else "real images")
    ipcs, starts = sorted(pts.ipc.unique()), sorted(pts.start.unique(), reverse=True)
    with dasm_style():
        width, height = plt.rcParams["figure.figsize"]
        fig, axes = plt.subplots(len(starts), len(ipcs), figsize=(width * 0.85 * len(ipcs) + 2.2, height * len(starts)),
                                 squeeze=False)
        for i, start in enumerate(starts):
            for ax, ipc in zip(axes[i], ipcs):
                part = pts[(pts.ipc == ipc) & (pts.start == start)]
                for method, points in part.groupby("method", sort=True):
                    line, color = _line_of(points), method_color(method)
                    ax.plot(line.moved, line.gain, color=color, linewidth=1.2)
                    for _, r in line.iterrows():
                        ax.errorbar(r.moved, r.gain, xerr=r.moved_std or None, yerr=r.gain_std or None,
                                    marker=lr_marker(r.lr_mult), ms=6, color=color, capsize=2, linewidth=0.8,
                                    markerfacecolor=color if r.it_mult <= 1 else "white")
                ax.axhline(0.0, color="#4d4d4d", linewidth=1)
                ax.set_xlabel("mean L2 distance moved from the starts (pixels in [0, 1])")
                ax.set_ylabel(f"val. accuracy minus the starts' (points)\nstarts: {start}")
                ax.set_title(f"IPC {ipc}, from {start}")
        methods = sorted(pts.method.unique())
        handles = [Line2D([], [], color=method_color(m), label=m) for m in methods]
        handles += [Line2D([], [], linestyle="", marker=mk, color="#4d4d4d", label=f"lr_img x{lr:g}")
                    for lr, mk in LR_MARKERS.items()]
        handles += [Line2D([], [], linestyle="", marker="o", color="#4d4d4d", markerfacecolor="white",
                           label="more iterations (x3)")]
        axes[0][-1].legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), title="method / point")
        fig.tight_layout()
    return fig


__all__ = ["moved", "diversity", "set_diversity", "regime_points", "plot_regime"]
