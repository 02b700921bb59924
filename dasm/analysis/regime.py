"""The regime map: how far matching moves a set from where it started, and what that does to it.

Two numbers describe a distilled set against its starts (``starts.pt`` in its run folder):

- :func:`moved`: the mean per-image L2 distance (pixel space, [0, 1] units, over a stored image's
  pixels) between the set and its starts;
- :func:`diversity`: the mean pairwise distance, within a class, of a fixed reference network's
  features of the set's (decoded) images, averaged over classes; collapsing images lower it.

:func:`plot_regime` draws the map from a tidy table (one row per point and metric): x = distance
moved, y = validation accuracy minus the starts', one panel per IPC, one line per method.
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
    keys = [k for k in ("dataset", "method", "ipc", "seed", "init", "lr_img", "lr_mult", "iterations")
            if k in table.columns]
    wide = table.pivot_table(index=keys, columns="metric", values="value", aggfunc="mean").reset_index()
    wide.columns.name = None
    if {"val_acc", "starts_val_acc"} <= set(wide.columns):
        wide["gain"] = wide["val_acc"] - wide["starts_val_acc"]
    return wide


def plot_regime(table: pd.DataFrame) -> Figure:
    """Validation accuracy minus the starts' against the distance moved: one column of panels per IPC, one
    row per kind of start (real images; noise, where matching does all the work), one line per method
    through its points ordered by distance, each point labelled by its lr and iterations."""
    import matplotlib.pyplot as plt

    pts = regime_points(table).dropna(subset=["moved", "gain"])
    if pts.empty:
        raise ValueError("no point has both its distance moved and its validation gain yet.")
    pts = pts.assign(start=(pts["init"] == "noise").map({True: "noise", False: "real images"})
                     if "init" in pts else "real images")
    ipcs, starts = sorted(pts.ipc.unique()), sorted(pts.start.unique(), reverse=True)
    with dasm_style():
        width, height = plt.rcParams["figure.figsize"]
        fig, axes = plt.subplots(len(starts), len(ipcs), figsize=(width * 0.85 * len(ipcs) + 1.8, height * len(starts)),
                                 squeeze=False)
        for i, start in enumerate(starts):
            for ax, ipc in zip(axes[i], ipcs):
                part = pts[(pts.ipc == ipc) & (pts.start == start)]
                for k, (method, line) in enumerate(part.groupby("method")):
                    line = line.groupby(["lr_img", "iterations"], as_index=False)[["moved", "gain"]].mean()
                    line = line.sort_values("moved")
                    ax.plot(line.moved, line.gain, marker="o", ms=4, color=method_color(method), label=method)
                    for _, r in line.iterrows():
                        ax.annotate(f"lr {r.lr_img:g}, {int(r.iterations)} it", (r.moved, r.gain), fontsize=6,
                                    xytext=(3, 3 - 11 * (k % 2)), textcoords="offset points",
                                    color=method_color(method))   # alternate methods below: no overlap
                ax.axhline(0.0, color="#4d4d4d", linewidth=1)
                ax.set_xlabel("mean L2 distance moved from the starts (pixels in [0, 1])")
                ax.set_ylabel(f"val. accuracy minus the starts' (points)\nstarts: {start}")
                ax.set_title(f"IPC {ipc}, from {start}")
        axes[0][-1].legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), title="method")
        fig.tight_layout()
    return fig


__all__ = ["moved", "diversity", "set_diversity", "regime_points", "plot_regime"]
