"""Error rate by difficulty against the controls: the easy-sample-bias diagnosis on the training images.

Difficulty is measured by full-data networks (their loss, or the forgetting events while one
trains), never by the network being judged. :func:`error_table` gives, per difficulty bin, the
error rate on the real training images of a network trained on each set, next to the controls
(the ``random`` set, the starts, a full-data network) and paired by seed;
:func:`plot_error_by_difficulty` draws it from the table alone (the images per bin on a log axis,
each set's error rate, and its error minus the random set's), and :func:`error_numbers` gives the
numbers the docs quote. Samples the scoring run never learned (forgetting) get their own bin.

:func:`set_predictions` trains the network of a set (:func:`train_on_set`) and caches its
predictions on disk under a hash of the set's content, so a second call trains nothing.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from torch import Tensor, nn

from ..data import Dataset
from ..device import seed_everything
from ..evaluate import make_augment
from ..files import load_or_compute
from ..nets import get_network
from ..train import Recipe, predict, train_model
from .by_difficulty import class_bins
from .controls import BASELINE, content_key, line_style, numbers_frame, paired_gap, set_order
from .histograms import NEVER_LEARNED, as_bool
from .style import dasm_style


# ---------------------------------------------------------------------------------------
# Convenience: the network of a synthetic set
# ---------------------------------------------------------------------------------------

def train_on_set(data: Dataset, x: Tensor, y: Tensor, epochs: int = 300, seed: int = 0, arch: str = "convnet",
                 *, recipe: Recipe | None = None, progress: bool = False, **net_kwargs) -> nn.Module:
    """A fresh seeded ``arch`` trained on ``(x, y)`` (pixels in [0, 1], e.g. ``SyntheticSet.decoded()``) with
    the evaluation recipe (``Recipe(epochs=epochs)`` unless ``recipe`` is given, DSA), in eval mode."""
    recipe = Recipe(epochs=epochs) if recipe is None else recipe
    if x.shape[1:] != data.x_train.shape[1:]:
        raise ValueError(f"Images have shape {tuple(x.shape[1:])} but {data.name} expects "
                         f"{tuple(data.x_train.shape[1:])}.")
    g = seed_everything(seed)
    net = get_network(arch, data.channels, data.num_classes, data.im_size, **net_kwargs).to(data.device)
    train_model(net, x.detach().to(data.device), y.detach().to(data.device), recipe,
                normalize=data.normalize, augment=make_augment(data, recipe), generator=g,
                progress=progress, desc=f"train {arch} on set")
    return net.eval()


def set_predictions(data: Dataset, x: Tensor, y: Tensor, *, seed: int = 0, recipe: Recipe | None = None,
                    arch: str = "convnet", cache_dir: str | Path | None = None, progress: bool = False,
                    **net_kwargs) -> Tensor:
    """The class a network trained on ``(x, y)`` (:func:`train_on_set`, ``recipe`` default ``Recipe()``) predicts for
    every real training image of ``data``, in dataset order (int64, CPU).

    With ``cache_dir`` the predictions are kept in ``set-predictions-<key>.pt``, the key hashing the set's
    content (images and labels), the recipe, seed, network and dataset: a second call with the same set
    trains nothing, and a changed set never reuses the predictions of the one it replaced.
    """
    recipe = Recipe() if recipe is None else recipe
    key = content_key("set-predictions/1", data.name, len(data.y_train), x, y, seed, recipe.describe(), arch,
                      sorted(net_kwargs.items()))
    file = None if cache_dir is None else Path(cache_dir) / f"set-predictions-{key}.pt"

    def compute() -> Tensor:
        net = train_on_set(data, x, y, seed=seed, arch=arch, recipe=recipe, progress=progress, **net_kwargs)
        return predict(net, data.x_train, data.normalize).argmax(1).to(torch.int16).cpu()

    return load_or_compute(file, compute).long()


# ---------------------------------------------------------------------------------------
# Error rate by difficulty, against the controls
# ---------------------------------------------------------------------------------------

ERROR_COLUMNS = ("score_name", "set", "seed", "bin", "bin_label", "bin_lo", "bin_hi", "never_learned_bin",
                 "binning", "n", "wrong", "error")


def difficulty_bins(scores: Tensor, y: Tensor, never_learned: Tensor | None = None,
                    bins: int = 10) -> tuple[np.ndarray, pd.DataFrame]:
    """The bin of every sample and a table of the bins (``bin, bin_label, bin_lo, bin_hi, never_learned_bin,
    binning``).

    Integer scores spanning at most ``bins`` values (forgetting counts) get one bin per value
    (``binning = "count"``); any other score gets ``bins`` quantile bins per class, each holding
    ``1/bins`` of every class (``"quantile"``; ``bin_lo``/``bin_hi`` are the lowest and highest score in
    the bin). Samples flagged ``never_learned`` or with an infinite score go to a last bin of their own,
    present whenever ``never_learned`` is given.
    """
    s = torch.as_tensor(scores).detach().reshape(-1).double().cpu()
    labels = torch.as_tensor(y).detach().reshape(-1).long().cpu()
    if len(s) != len(labels):
        raise ValueError(f"{len(s)} scores for {len(labels)} labels: score every training image.")
    if torch.isnan(s).any():
        raise ValueError(f"{int(torch.isnan(s).sum())} scores are NaN; flag never-learned samples instead.")
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise ValueError(f"bins must be a positive int, got {bins!r}.")
    nl = torch.zeros(len(s), dtype=torch.bool) if never_learned is None else \
        torch.as_tensor(never_learned).detach().reshape(-1).bool().cpu()
    if len(nl) != len(s):
        raise ValueError(f"never_learned has {len(nl)} entries for {len(s)} scores.")
    nl = (nl | torch.isinf(s)).numpy()
    learned = s.numpy()[~nl]
    if len(learned) == 0:
        raise ValueError("Every sample is flagged never learned: there is no difficulty to bin.")
    which = np.full(len(s), -1, dtype=np.int64)
    if np.all(learned == np.round(learned)) and learned.max() - learned.min() + 1 <= bins:
        lo, binning = int(learned.min()), "count"
        nb = int(learned.max()) - lo + 1
        which[~nl] = (learned - lo).astype(np.int64)
        info = [{"bin_label": f"{lo + b}", "bin_lo": lo + b - 0.5, "bin_hi": lo + b + 0.5} for b in range(nb)]
    else:
        nb, binning = bins, "quantile"
        which[~nl] = class_bins(torch.from_numpy(learned), labels[torch.from_numpy(~nl)], nb).numpy()
        info = []
        for b in range(nb):
            inside = learned[which[~nl] == b]
            info.append({"bin_label": f"{100 * b / nb:g}-{100 * (b + 1) / nb:g}%",
                         "bin_lo": float(inside.min()) if len(inside) else math.nan,
                         "bin_hi": float(inside.max()) if len(inside) else math.nan})
    rows = [{"bin": b, **info[b], "never_learned_bin": False} for b in range(nb)]
    if never_learned is not None or nl.any():
        which[nl] = nb
        rows.append({"bin": nb, "bin_label": NEVER_LEARNED, "bin_lo": math.nan, "bin_hi": math.nan,
                     "never_learned_bin": True})
    return which, pd.DataFrame(rows).assign(binning=binning)


def error_table(y: Tensor, scores: Tensor, predictions: dict[tuple[str, int], Tensor], *,
                never_learned: Tensor | None = None, score_name: str = "loss", bins: int = 10,
                own_scores: dict[tuple[str, int], Tensor] | None = None) -> pd.DataFrame:
    """One row per (set, seed, difficulty bin of :func:`difficulty_bins`): the real training images in the bin
    (``n``), how many of them the set's network gets ``wrong``, and its ``error`` in percent.

    ``predictions`` maps ``(set name, seed)`` to the class predicted for every training image (dataset order)
    by a network trained on that set (:func:`set_predictions`); name the controls ``random``, ``<base>-starts``
    and ``full`` (a full-data network). ``scores`` is the difficulty under full-data networks;
    ``own_scores[(set, seed)]`` replaces it for one entry: a full-data network is binned by the difficulty the
    *other* full-data networks define, so it is never graded on its own scale.
    """
    labels = torch.as_tensor(y).detach().reshape(-1).long().cpu()
    if not predictions:
        raise ValueError("Give the predictions of at least one set's network.")
    shared = difficulty_bins(scores, labels, never_learned, bins)
    frames = []
    for (name, seed), pred in predictions.items():
        pred = torch.as_tensor(pred).detach().reshape(-1).long().cpu()
        if len(pred) != len(labels):
            raise ValueError(f"predictions of {name!r} (seed {seed}) cover {len(pred)} images, not the "
                             f"{len(labels)} training images.")
        own = (own_scores or {}).get((name, seed))
        which, info = shared if own is None else difficulty_bins(own, labels, never_learned, bins)
        wrong = (pred != labels).numpy()
        n = np.bincount(which, minlength=len(info))[:len(info)]
        bad = np.bincount(which, weights=wrong, minlength=len(info))[:len(info)].astype(np.int64)
        with np.errstate(invalid="ignore", divide="ignore"):
            error = np.where(n > 0, 100.0 * bad / np.maximum(n, 1), math.nan)
        frames.append(info.assign(score_name=str(score_name), set=str(name), seed=int(seed), n=n, wrong=bad,
                                  error=error))
    return pd.concat(frames, ignore_index=True)[list(ERROR_COLUMNS)]


def _ends(part: pd.DataFrame) -> tuple[list[int], list[int]]:
    """The easy and the hard bins of one score: the first and last 30% of quantile bins; for counts the
    first value (never forgotten) against every other value and the never-learned bin."""
    regular = sorted(part.loc[~part["never_learned_bin"].astype(bool), "bin"].unique())
    never = sorted(part.loc[part["never_learned_bin"].astype(bool), "bin"].unique())
    if str(part["binning"].iloc[0]) == "quantile":
        k = max(1, round(0.3 * len(regular)))
        return regular[:k], regular[-k:] + never
    return regular[:1], regular[1:] + never


def error_numbers(table: pd.DataFrame, baseline: str = BASELINE) -> pd.DataFrame:
    """The numbers the docs quote, per score, set and seed (:func:`~dasm.analysis.controls.numbers_frame`):
    ``easy_error`` and ``hard_error`` (percent wrong on the easy and the hard bins of :func:`_ends`), their
    gaps to the ``baseline`` set on the same seed, and ``contrast`` = hard gap minus easy gap (positive: the
    set errs more than random on the hard images than on the easy ones: the easy-sample bias)."""
    rows = []
    for score, part in table.groupby("score_name", sort=False):
        easy, hard = _ends(part)
        per = []
        for (name, seed), g in part.groupby(["set", "seed"], sort=False):
            e, h = g[g["bin"].isin(easy)], g[g["bin"].isin(hard)]
            per.append({"set": name, "seed": seed,
                        "easy_error": 100.0 * e["wrong"].sum() / e["n"].sum() if e["n"].sum() else math.nan,
                        "hard_error": 100.0 * h["wrong"].sum() / h["n"].sum() if h["n"].sum() else math.nan})
        per = pd.DataFrame(per)
        per["easy_gap"] = paired_gap(per, "easy_error", ["seed"], baseline)
        per["hard_gap"] = paired_gap(per, "hard_error", ["seed"], baseline)
        per["contrast"] = per["hard_gap"] - per["easy_gap"]
        for r in per.itertuples(index=False):
            for metric in ("easy_error", "hard_error", "easy_gap", "hard_gap", "contrast"):
                rows.append({"figure": f"errors_{score}", "set": r.set, "seed": int(r.seed), "metric": metric,
                             "baseline": baseline if metric.endswith(("gap", "contrast")) else "",
                             "value": float(getattr(r, metric))})
    return numbers_frame(rows)


def _over_seeds(frame: pd.DataFrame, value: str) -> pd.DataFrame:
    """Mean, std (0 for one seed) and seed count of ``value`` per (set, bin)."""
    out = frame.groupby(["set", "bin"])[value].agg(["mean", "std", "count"]).reset_index()
    out["std"] = out["std"].fillna(0.0)
    return out


def _error_lines(ax, stats: pd.DataFrame, names: list[str], label_seeds: bool) -> None:
    for name in names:
        s = stats[stats["set"] == name].sort_values("bin")
        if s["mean"].isna().all():
            continue
        style = line_style(name)
        label = f"{name} ({int(s['count'].max())} seed{'s' if s['count'].max() != 1 else ''})" if label_seeds else None
        ax.plot(s["bin"], s["mean"], marker="o", markersize=3, label=label, **style)
        ax.fill_between(s["bin"], s["mean"] - s["std"], s["mean"] + s["std"], color=style["color"], alpha=0.15,
                        linewidth=0)


def plot_error_by_difficulty(table: pd.DataFrame, baseline: str = BASELINE) -> Figure:
    """Draw an :func:`error_table` of one score: the real training images per bin (log axis), each set's error
    rate per bin (mean ± std over seeds; controls dashed, full dotted), and its error minus the ``baseline``
    set's on the same seed."""
    import matplotlib.pyplot as plt

    missing = [c for c in ERROR_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"The table lacks the columns {missing}; build it with error_table().")
    if table["score_name"].nunique() != 1:
        raise ValueError(f"The table mixes scores {sorted(table['score_name'].unique())}; draw one at a time.")
    t = table.assign(never_learned_bin=as_bool(table["never_learned_bin"]).fillna(False).astype(bool))
    t = t.assign(gap=paired_gap(t, "error", ["seed", "bin"], baseline))
    names = set_order(t["set"])
    bins = t.drop_duplicates("bin").sort_values("bin")
    counts = t[t["set"] == names[0]].groupby("bin")["n"].first()
    with dasm_style():
        fig, axes = plt.subplots(3, 1, sharex=True, figsize=(6.8, 7.4), gridspec_kw={"height_ratios": [1, 2, 2]})
        hatch = ["//" if nl else None for nl in bins["never_learned_bin"]]
        for b, h in zip(bins["bin"], hatch):
            axes[0].bar(b, counts.get(b, 0), color="#949494", hatch=h, edgecolor="white", width=0.8)
        axes[0].set_yscale("log")
        axes[0].set_ylim(bottom=0.8)   # bars from one image up: equal quantile bins look equal
        axes[0].set_ylabel("real training\nimages")
        _error_lines(axes[1], _over_seeds(t, "error"), names, True)
        axes[1].set_ylabel("error of the set's\nnetwork (%)")
        axes[1].legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), title="set")
        _error_lines(axes[2], _over_seeds(t[t["set"] != baseline], "gap"), [n for n in names if n != baseline], False)
        axes[2].axhline(0.0, label=baseline, linewidth=1.2, **line_style(baseline))
        axes[2].set_ylabel(f"error minus {baseline}'s\n(points, same seed)")
        axes[2].set_xticks(bins["bin"], bins["bin_label"], rotation=45 if len(bins) > 6 else 0, ha="right"
                           if len(bins) > 6 else "center")
        score = str(t["score_name"].iloc[0])
        kind = "quantile bins per class" if str(t["binning"].iloc[0]) == "quantile" else "events"
        axes[2].set_xlabel(f"{score} under full-data networks ({kind}; hardest right)")
        axes[0].set_title(f"Real training images by difficulty ({score}): error against the controls")
        fig.tight_layout()
    return fig
