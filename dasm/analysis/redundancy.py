"""Redundancy: how much training signal disjoint parts of a synthetic set share.

Three views: train on each half of the set and on both (:func:`redundancy_table`; little gain
of A+B over the halves means the halves teach the same thing), compare the training gradients
of disjoint class-balanced groups (:func:`gradient_similarity`), and measure how well the set
covers each class in feature space (:func:`coverage`).
"""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import Tensor, nn

from ..data import Dataset
from ..evaluate import Protocol, train_and_test
from ..files import load_or_compute
from ..synthetic import SyntheticSet, check_matches, decode
from ..train import Recipe
from .controls import BASELINE, content_key, line_style, numbers_frame, paired_gap, set_order
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


def _test_accuracy(data: Dataset, x: Tensor, y: Tensor, protocol: Protocol, seed: int, cache_dir: str | Path | None,
                   progress: bool, desc: str) -> float:
    """Test accuracy of a fresh network trained on ``(x, y)`` under ``protocol``; kept in ``cache_dir`` under a hash
    of the images, labels, protocol and seed, so a second call trains nothing."""
    key = content_key("redundancy/1", data.name, x, y, protocol.id, seed)
    file = None if cache_dir is None else Path(cache_dir) / f"accuracy-{key}.pt"
    res = load_or_compute(file, lambda: {"test_acc": float(train_and_test(data, x, y, protocol, seed=seed,
                                                                          progress=progress, desc=desc)["test_acc"])})
    return float(res["test_acc"])


def redundancy_table(data: Dataset, syn: SyntheticSet, epochs: int = 100, seeds: list[int] = [0], seed: int = 0,
                     arch: str = "convnet", progress: bool = False, *, protocol: Protocol | None = None,
                     whole: dict[int, float] | None = None, cache_dir: str | Path | None = None,
                     **net_kwargs: object) -> pd.DataFrame:
    """Test accuracy of fresh ``arch`` networks trained (evaluation recipe, DSA) on half A, half B and A+B of
    ``syn`` (halves from :func:`split_halves` with ``seed``), for each training seed in ``seeds``.

    Long rows ``subset, seed, metric, value, ipc, method``: ``test_acc`` (percent) per subset and seed, and
    ``gain`` (A+B minus the mean of the halves, percentage points; low gain = redundant halves) per seed.
    ``protocol`` replaces ``epochs``/``arch``/``net_kwargs`` (e.g. the preset's protocol of the set's method);
    ``whole[seed]`` is the accuracy of the whole set already measured with that protocol and seed (its
    evaluation), so A+B is not trained again; ``cache_dir`` keeps every trained accuracy.
    """
    seeds = list(seeds)
    if not seeds:
        raise ValueError("Give at least one seed.")
    check_matches(syn, data)
    a, b = split_halves(syn, seed)
    both = torch.sort(torch.cat([a, b])).values
    if protocol is None:
        protocol = Protocol(arch=arch, recipe=Recipe(epochs=epochs), net_kwargs=tuple(sorted(net_kwargs.items())))
    method = str(syn.meta.get("method", "synthetic"))
    rows = []
    for s in seeds:
        acc = {}
        for name, idx in zip(SUBSETS, (a, b, both)):
            if name == "A+B" and whole is not None and s in whole and len(both) == len(syn.labels):
                acc[name] = float(whole[s])
            else:
                acc[name] = _test_accuracy(data, *_subset(syn, idx), protocol, s, cache_dir, progress,
                                           f"redundancy {name} s{s}")
            rows.append({"subset": name, "seed": s, "metric": "test_acc", "value": acc[name],
                         "ipc": len(idx) // syn.num_classes, "method": method})
        rows.append({"subset": "A+B", "seed": s, "metric": "gain", "value": acc["A+B"] - (acc["A"] + acc["B"]) / 2,
                     "ipc": len(both) // syn.num_classes, "method": method})
    return pd.DataFrame(rows)


def redundancy_sets_table(data: Dataset, sets: dict[tuple[str, int], SyntheticSet], *,
                          protocols: dict[str, Protocol] | None = None, epochs: int = 100,
                          train_seeds: list[int] | None = None, whole: dict[tuple[str, int], float] | None = None,
                          cache_dir: str | Path | None = None, progress: bool = False,
                          **net_kwargs: object) -> pd.DataFrame:
    """:func:`redundancy_table` of every set, with a ``set`` column: ``sets`` maps ``(set name, seed)`` to a set
    (name the control ``random``); each is split into halves with its seed and trained with that seed, or with
    every seed of ``train_seeds`` (one set per method, seeds over training). ``protocols[name]`` is the
    protocol of a set (default: ``epochs`` of the evaluation recipe), ``whole[(name, seed)]`` its measured
    accuracy (:func:`redundancy_table`'s ``whole``)."""
    frames = []
    for (name, s), syn in sets.items():
        if syn.ipc < 2:
            continue   # one image per class cannot be halved
        seeds = [s] if train_seeds is None else list(train_seeds)
        known = {t: whole[(name, t)] for t in seeds if whole and (name, t) in whole}
        t = redundancy_table(data, syn, epochs=epochs, seeds=seeds, seed=s, progress=progress,
                             protocol=(protocols or {}).get(name), whole=known or None, cache_dir=cache_dir,
                             **net_kwargs)
        frames.append(t.assign(set=str(name), split_seed=int(s)))
    if not frames:
        raise ValueError("No set holds two or more images per class: nothing to halve.")
    return pd.concat(frames, ignore_index=True)


def redundancy_numbers(table: pd.DataFrame, baseline: str = BASELINE) -> pd.DataFrame:
    """Per set and seed (:func:`~dasm.analysis.controls.numbers_frame`): ``whole_acc`` (A+B), ``halves_acc`` (mean
    of A and B), ``gain`` (their difference: what the second half adds; low = redundant) and the gain's gap to
    the ``baseline`` set on the same seed (negative: the set's halves share more than random halves do)."""
    acc = table[table["metric"] == "test_acc"]
    per = acc.pivot_table(index=["set", "seed"], columns="subset", values="value", aggfunc="mean").reset_index()
    per["halves_acc"] = (per["A"] + per["B"]) / 2
    per["gain"] = per["A+B"] - per["halves_acc"]
    per["gap"] = paired_gap(per, "gain", ["seed"], baseline)
    rows = []
    for r in per.to_dict("records"):
        common = {"figure": "redundancy", "set": r["set"], "seed": int(r["seed"])}
        rows += [{**common, "metric": "whole_acc", "value": float(r["A+B"])},
                 {**common, "metric": "halves_acc", "value": float(r["halves_acc"])},
                 {**common, "metric": "gain", "value": float(r["gain"])},
                 {**common, "metric": "gain", "baseline": baseline, "value": float(r["gap"])}]
    return numbers_frame(rows)


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


def plot_redundancy_sets(table: pd.DataFrame, baseline: str = BASELINE) -> Figure:
    """Draw a :func:`redundancy_sets_table`: per set (controls first), the gain of A+B over its halves (bar = mean,
    whisker = std over seeds, dots = seeds; the ``baseline`` set's mean as a dashed line), and beside it the
    accuracies of the halves and of A+B."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    numbers = redundancy_numbers(table, baseline)
    per = numbers[numbers["baseline"] == ""].pivot_table(index=["set", "seed"], columns="metric",
                                                         values="value").reset_index()
    names = set_order(per["set"])
    with dasm_style():
        fig, (left, right) = plt.subplots(1, 2, figsize=(4.0 + 1.4 * len(names), 3.8),
                                          gridspec_kw={"width_ratios": [1, 1.3]})
        for i, name in enumerate(names):
            rows, color = per[per["set"] == name], line_style(name)["color"]
            hatch = "//" if line_style(name)["linestyle"] != "-" else None
            left.bar(i, rows["gain"].mean(), yerr=rows["gain"].std() if len(rows) > 1 else 0, color=color,
                     alpha=0.45, hatch=hatch, edgecolor="black", linewidth=0.6, capsize=4)
            left.scatter([i] * len(rows), rows["gain"], color=color, edgecolors="black", s=16, zorder=3)
            for j, (metric, shade) in enumerate((("halves_acc", 0.4), ("whole_acc", 0.9))):
                right.bar(i + (j - 0.5) * 0.38, rows[metric].mean(), width=0.36, color=color, alpha=shade,
                          yerr=rows[metric].std() if len(rows) > 1 else 0, capsize=3, edgecolor="black",
                          linewidth=0.5)
        if baseline in names:
            left.axhline(per.loc[per["set"] == baseline, "gain"].mean(), linestyle="--", linewidth=1.2,
                         color=line_style(baseline)["color"], label=f"{baseline}'s gain")
            left.legend(loc="best")
        seeds = int(per.groupby("set")["seed"].nunique().max())
        for ax in (left, right):
            ax.set_xticks(range(len(names)), names, rotation=30 if len(names) > 3 else 0, ha="right"
                          if len(names) > 3 else "center")
        left.set_ylabel("gain of A+B over its halves (points)")
        left.set_title(f"What the second half adds ({seeds} seed{'s' if seeds != 1 else ''})")
        right.set_ylabel("test accuracy (%)")
        right.set_ylim(0, min(100.0, float(per[["halves_acc", "whole_acc"]].max().max()) * 1.25 + 1))
        right.legend(handles=[Patch(facecolor="0.4", alpha=a, edgecolor="black", label=t)
                              for a, t in ((0.4, "halves A, B (mean)"), (0.9, "A+B"))], loc="upper left", ncol=2)
        right.set_title("Accuracy of the halves and the whole set")
        fig.tight_layout()
    return fig


__all__ = ["split_halves", "redundancy_table", "redundancy_sets_table", "redundancy_numbers", "gradient_similarity",
           "coverage", "plot_redundancy", "plot_redundancy_sets"]
