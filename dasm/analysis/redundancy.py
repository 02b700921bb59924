"""Redundancy: how much training signal disjoint parts of a synthetic set share.

Three views: train on each half of the set and on both (:func:`redundancy_table`; little gain
of A+B over the halves means the halves teach the same thing), compare the training gradients
of disjoint class-balanced groups (:func:`gradient_similarity`), and measure how well the set
covers each class in feature space (:func:`coverage`).
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import Tensor, nn

from ..data import Dataset
from ..evaluate import Protocol, train_and_test
from ..synthetic import SyntheticSet, check_matches, decode
from ..train import Recipe
from .style import dasm_style, method_color

SUBSETS = ("A", "B", "A+B")


def _class_groups(syn: SyntheticSet, groups: int, seed: int) -> list[Tensor]:
    """``groups`` disjoint index sets into ``syn.images``, each with ``n // groups`` images of every class."""
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 2:
        raise ValueError(f"groups must be an integer >= 2, got {groups!r}.")
    per_class = len(syn.labels) // syn.num_classes
    if per_class < groups:
        raise ValueError(f"the set holds {per_class} image(s) per class: too few to split into {groups} "
                         "class-balanced groups (each needs at least one image of every class).")
    size = per_class // groups
    g = torch.Generator().manual_seed(seed)
    parts: list[list[Tensor]] = [[] for _ in range(groups)]
    labels = syn.labels.cpu()
    for c in range(syn.num_classes):
        rows = torch.nonzero(labels == c, as_tuple=True)[0]
        rows = rows[torch.randperm(len(rows), generator=g)]
        for k in range(groups):
            parts[k].append(rows[k * size:(k + 1) * size])
    return [torch.sort(torch.cat(p)).values.to(syn.labels.device) for p in parts]


def split_halves(syn: SyntheticSet, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Two disjoint, sorted index sets into ``syn.images``, each holding half of every class's images (seeded).

    With an odd number per class the one image left over is in neither half.
    """
    a, b = _class_groups(syn, 2, seed)
    return a, b


def _subset(syn: SyntheticSet, idx: Tensor) -> tuple[Tensor, Tensor]:
    """Decoded training view (images, labels) of the stored images ``idx``."""
    return decode(syn.images.detach()[idx], syn.factor), syn.labels[idx].repeat_interleave(syn.factor ** 2)


def redundancy_table(data: Dataset, syn: SyntheticSet, epochs: int = 100, seeds: list[int] = [0], seed: int = 0,
                     arch: str = "convnet", progress: bool = False, **net_kwargs: object) -> pd.DataFrame:
    """Test accuracy of fresh ``arch`` networks trained (evaluation recipe, DSA) on half A, half B and A+B of
    ``syn`` (halves from :func:`split_halves` with ``seed``), for each training seed in ``seeds``.

    Long rows ``subset, seed, metric, value, ipc, method``: ``test_acc`` (percent) per subset and seed, and
    ``gain`` (A+B minus the mean of the halves, percentage points; low gain = redundant halves) per seed.
    """
    seeds = list(seeds)
    if not seeds:
        raise ValueError("Give at least one seed.")
    check_matches(syn, data)
    a, b = split_halves(syn, seed)
    both = torch.sort(torch.cat([a, b])).values
    protocol = Protocol(arch=arch, recipe=Recipe(epochs=epochs), net_kwargs=tuple(sorted(net_kwargs.items())))
    method = str(syn.meta.get("method", "synthetic"))
    rows = []
    for s in seeds:
        acc = {}
        for name, idx in zip(SUBSETS, (a, b, both)):
            x, y = _subset(syn, idx)
            res = train_and_test(data, x, y, protocol, seed=s, progress=progress, desc=f"redundancy {name} s{s}")
            acc[name] = res["test_acc"]
            rows.append({"subset": name, "seed": s, "metric": "test_acc", "value": res["test_acc"],
                         "ipc": len(idx) // syn.num_classes, "method": method})
        rows.append({"subset": "A+B", "seed": s, "metric": "gain", "value": acc["A+B"] - (acc["A"] + acc["B"]) / 2,
                     "ipc": len(both) // syn.num_classes, "method": method})
    return pd.DataFrame(rows)


def _flat_grad(net: nn.Module, params: list[nn.Parameter], x: Tensor, y: Tensor) -> Tensor:
    loss = F.cross_entropy(net(x), y)
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return torch.cat([(torch.zeros_like(p) if gr is None else gr).flatten() for p, gr in zip(params, grads)])


def gradient_similarity(net: nn.Module, data: Dataset, syn: SyntheticSet, groups: int = 2,
                        seed: int = 0) -> pd.DataFrame:
    """Cosine similarity between the gradients (mean cross-entropy w.r.t. every parameter of ``net`` at its
    current weights, eval mode, no augmentation) of ``groups`` disjoint class-balanced subsets of ``syn``.

    One row per pair: ``group_a, group_b, cosine`` (groups numbered from 0; 1 = the groups teach alike).
    """
    parts = _class_groups(syn, groups, seed)
    params = [p for p in net.parameters() if p.requires_grad]
    if not params:
        raise ValueError("net has no trainable parameters to take gradients of.")
    device = params[0].device
    was_training = net.training
    net.eval()
    try:
        grads = []
        for idx in parts:
            x, y = _subset(syn, idx)
            grads.append(_flat_grad(net, params, data.normalize(x.to(device)), y.to(device)).double())
    finally:
        net.train(was_training)
    rows = [{"group_a": i, "group_b": j,
             "cosine": float(F.cosine_similarity(grads[i], grads[j], dim=0, eps=1e-12))}
            for i, j in combinations(range(groups), 2)]
    return pd.DataFrame(rows, columns=["group_a", "group_b", "cosine"])


def coverage(features_real: Tensor, features_syn: Tensor, labels_real: Tensor, labels_syn: Tensor) -> pd.DataFrame:
    """Per class, the mean and 90th-percentile Euclidean distance from each real sample's features to the
    nearest synthetic sample of the same class (lower = the set covers the class better).

    Rows: ``label, mean_nn_dist, p90_nn_dist, n_real, n_syn`` (distances NaN for a class with no synthetic sample).
    """
    fr, fs = features_real.detach().flatten(1).double(), features_syn.detach().flatten(1).double().to(
        features_real.device)
    lr, ls = labels_real.detach().to(fr.device), labels_syn.detach().to(fr.device)
    if len(fr) != len(lr) or len(fs) != len(ls):
        raise ValueError(f"features and labels disagree: {len(fr)} real features vs {len(lr)} labels, "
                         f"{len(fs)} synthetic features vs {len(ls)} labels.")
    if len(fr) and len(fs) and fr.shape[1] != fs.shape[1]:
        raise ValueError(f"real features have {fr.shape[1]} dimensions but synthetic ones {fs.shape[1]}: "
                         "embed both with the same network.")
    rows = []
    for c in sorted(int(v) for v in torch.unique(lr).tolist()):
        r, s = fr[lr == c], fs[ls == c]
        if len(s) == 0:
            mean = p90 = float("nan")
        else:
            nn_dist = torch.cdist(r, s, compute_mode="donot_use_mm_for_euclid_dist").min(1).values
            mean, p90 = float(nn_dist.mean()), float(torch.quantile(nn_dist, 0.9))
        rows.append({"label": c, "mean_nn_dist": mean, "p90_nn_dist": p90, "n_real": len(r), "n_syn": len(s)})
    return pd.DataFrame(rows, columns=["label", "mean_nn_dist", "p90_nn_dist", "n_real", "n_syn"])


def plot_redundancy(table: pd.DataFrame) -> Figure:
    """Bar chart of test accuracy (mean ± std over seeds) when training on half A, half B and A+B of a
    synthetic set, from a :func:`redundancy_table`; the title gives the gain of A+B over the halves.
    """
    import matplotlib.pyplot as plt

    acc = table[table["metric"] == "test_acc"]
    if acc.empty:
        raise ValueError("table holds no test_acc rows; make it with redundancy_table().")
    stats = acc.groupby("subset")["value"].agg(["mean", "std", "count"]).reindex(
        [s for s in SUBSETS if s in set(acc["subset"])])
    stats["std"] = stats["std"].fillna(0.0)
    ipc = acc.groupby("subset")["ipc"].first() if "ipc" in acc.columns else None
    method = str(table["method"].iloc[0]) if "method" in table.columns else "synthetic"
    color = method_color(method)

    with dasm_style():
        fig, ax = plt.subplots(figsize=(4.6, 3.6))
        pos = np.arange(len(stats))
        shades = {"A": 0.55, "B": 0.55, "A+B": 1.0}
        bars = ax.bar(pos, stats["mean"], yerr=stats["std"], capsize=4, width=0.6, color=color,
                      edgecolor="black", linewidth=0.6)
        for bar, name in zip(bars, stats.index):
            bar.set_alpha(shades.get(name, 1.0))
            ax.annotate(f"{stats.loc[name, 'mean']:.1f}", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                        xytext=(0, 3), textcoords="offset points", ha="center", va="bottom", fontsize=8)
        names = [f"{s}\n(IPC {int(ipc[s])})" if ipc is not None else s for s in stats.index]
        ax.set_xticks(pos, names)
        ax.set_xlabel("training subset of the synthetic set")
        ax.set_ylabel("test accuracy (%)")
        ax.set_ylim(0, min(100.0, float((stats["mean"] + stats["std"]).max()) * 1.15 + 1))
        gain = table[table["metric"] == "gain"]["value"]
        seeds = int(stats["count"].max())
        title = f"{method}: redundancy of halves ({seeds} seed{'s' if seeds != 1 else ''})"
        if len(gain):
            title += f"\ngain of A+B over the halves: {gain.mean():+.1f} pp"
        ax.set_title(title)
        fig.tight_layout()
    return fig


__all__ = ["split_halves", "redundancy_table", "gradient_similarity", "coverage", "plot_redundancy"]
