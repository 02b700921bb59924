"""Difficulty histograms: how often does a set's network get the real training images of each difficulty wrong?

Difficulty is measured by full-data networks (their loss, or the forgetting events while one
trains), never by the network being judged. The diagnosis is :func:`error_table`: per
difficulty bin, the error rate on the real training images of a network trained on each set,
next to the controls (the ``random`` set, the starts, a full-data network) and paired by seed;
:func:`plot_error_by_difficulty` draws it from the table alone (the images per bin on a log axis,
each set's error rate, and its error minus the random set's), and :func:`error_numbers` gives the
numbers the docs quote. Samples the scoring run never learned (forgetting) get their own bin.

Raw right/wrong histograms of one network per set (:func:`difficulty_table`,
:func:`histogram_counts`, :func:`plot_difficulty_histogram`) stay for notebooks and panels; note
that they are lopsided by construction (a loss above ln K is always a wrong answer), which is
why the diagnosis compares error rates with a control's instead.

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
from .style import dasm_style, set_colors

TABLE_COLUMNS = ("index", "label", "score", "score_name", "never_learned", "set", "correct")
NO_SET = "all"  # the set name used when the table has no synthetic sets (correct is then missing)
NEVER_LEARNED = "never learned"
RIGHT_COLOR, WRONG_COLOR, ALL_COLOR = "#029e73", "#d55e00", "#949494"


# ---------------------------------------------------------------------------------------
# The table
# ---------------------------------------------------------------------------------------

def difficulty_table(data: Dataset, scores: Tensor, never_learned: Tensor | None = None,
                     score_name: str = "loss", sets: dict[str, nn.Module] | None = None) -> pd.DataFrame:
    """One row per (real training sample, set): its difficulty ``score`` under a full-data network,
    whether that scoring run ``never_learned`` it, and whether the network of each synthetic set in
    ``sets`` (name -> trained net) classifies it ``correct``ly.

    Without ``sets`` there is one row per sample with ``set = "all"`` and ``correct`` missing.
    Infinite scores are flagged as never learned; NaN scores are an error.
    """
    n = len(data.y_train)
    s = torch.as_tensor(scores).detach().reshape(-1).double().cpu()
    if len(s) != n:
        raise ValueError(f"scores has {len(s)} entries but {data.name} has {n} training samples: "
                         "score every training sample (in dataset order).")
    if torch.isnan(s).any():
        raise ValueError(f"{int(torch.isnan(s).sum())} scores are NaN; pass finite scores and flag "
                         "never-learned samples with never_learned instead.")
    nl = torch.zeros(n, dtype=torch.bool) if never_learned is None else \
        torch.as_tensor(never_learned).detach().reshape(-1).bool().cpu()
    if len(nl) != n:
        raise ValueError(f"never_learned has {len(nl)} entries but {data.name} has {n} training samples.")
    nl = nl | torch.isinf(s)
    base = pd.DataFrame({
        "index": np.arange(n, dtype=np.int64),
        "label": data.y_train.detach().cpu().numpy().astype(np.int64),
        "score": s.numpy(),
        "score_name": str(score_name),
        "never_learned": nl.numpy(),
    })
    if not sets:
        return base.assign(set=NO_SET, correct=pd.array([pd.NA] * n, dtype="boolean"))[list(TABLE_COLUMNS)]
    parts = []
    for name, net in sets.items():
        if not isinstance(net, nn.Module):
            raise ValueError(f"sets[{name!r}] is a {type(net).__name__}, not a trained torch nn.Module.")
        dev = next(net.parameters()).device
        pred = predict(net, data.x_train.to(dev), data.normalize).argmax(1).cpu()
        correct = (pred == data.y_train.cpu()).numpy()
        parts.append(base.assign(set=str(name), correct=correct))
    return pd.concat(parts, ignore_index=True)[list(TABLE_COLUMNS)]


def _check_table(table: pd.DataFrame) -> None:
    missing = [c for c in TABLE_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"The table lacks the columns {missing}; build it with difficulty_table().")
    if table.empty:
        raise ValueError("The difficulty table is empty.")


def _as_bool(col: pd.Series) -> pd.Series:
    """A boolean column that may have gone through a CSV (strings "True"/"False") and may hold missing values."""
    if col.dtype == object:
        col = col.map(lambda v: {"true": True, "false": False}.get(str(v).lower(), pd.NA))
    return col.astype("boolean")


def _bin_edges(scores: np.ndarray, bins: int) -> tuple[np.ndarray, bool]:
    """Shared edges, and whether they are unit-wide bins centred on integers: those serve integer scores
    with at most ``bins`` distinct values (forgetting counts); anything else gets ``bins`` equal-width bins."""
    if len(scores) == 0:
        return np.array([0.0, 1.0]), False
    lo, hi = float(scores.min()), float(scores.max())
    if np.all(scores == np.round(scores)) and hi - lo + 1 <= bins:
        return np.arange(lo - 0.5, hi + 1.0, 1.0), True
    if hi == lo:
        lo, hi = lo - 0.5, hi + 0.5
    return np.linspace(lo, hi, bins + 1), False


# ---------------------------------------------------------------------------------------
# Binning
# ---------------------------------------------------------------------------------------

def histogram_counts(table: pd.DataFrame, bins: int = 20) -> pd.DataFrame:
    """Counts per (set, correct, bin) over difficulty bins shared by every set, zeros included, plus a
    last bin ``"never learned"`` (``bin_lo = bin_hi = NaN``, ``never_learned_bin`` True); per set the
    counts add up to the number of samples.

    Columns: set, correct, bin (0.. in score order, never-learned last), bin_label, bin_lo, bin_hi,
    never_learned_bin, count, score_name.
    """
    _check_table(table)
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise ValueError(f"bins must be a positive int, got {bins!r}.")
    names = table["score_name"].astype(str).unique()
    if len(names) > 1:
        raise ValueError(f"The table mixes scores {list(names)}; bin one score at a time.")
    nl = _as_bool(table["never_learned"]).fillna(False).to_numpy(dtype=bool)
    score = table["score"].to_numpy(dtype=float)
    if np.isnan(score).any() or np.isinf(score[~nl]).any():
        raise ValueError("Scores must not be NaN, and infinite scores must be flagged never_learned "
                         "(difficulty_table does both checks).")
    edges, is_int = _bin_edges(score[~nl], bins)
    nb = len(edges) - 1
    which = np.clip(np.searchsorted(edges, np.where(nl, edges[0], score), side="right") - 1, 0, nb - 1)
    which = np.where(nl, nb, which)
    labels = [(f"{edges[b] + 0.5:g}" if is_int else f"[{edges[b]:.3g}, {edges[b + 1]:.3g})")
              for b in range(nb)] + [NEVER_LEARNED]

    correct = _as_bool(table["correct"])
    sets = table["set"].astype(str).to_numpy()
    rows = []
    for name in pd.unique(sets):
        in_set = sets == name
        c = correct[in_set]
        if c.isna().any() and not c.isna().all():
            raise ValueError(f"Set {name!r} has rows with and without a 'correct' value.")
        groups = [(pd.NA, np.ones(in_set.sum(), dtype=bool))] if c.isna().all() else \
            [(True, c.fillna(False).to_numpy(dtype=bool)), (False, (~c.fillna(True)).to_numpy(dtype=bool))]
        for value, mask in groups:
            counts = np.bincount(which[in_set][mask], minlength=nb + 1)
            for b in range(nb + 1):
                never = b == nb
                rows.append({"set": name, "correct": value, "bin": b, "bin_label": labels[b],
                             "bin_lo": math.nan if never else float(edges[b]),
                             "bin_hi": math.nan if never else float(edges[b + 1]),
                             "never_learned_bin": never, "count": int(counts[b]), "score_name": names[0]})
    out = pd.DataFrame(rows)
    out["correct"] = out["correct"].astype("boolean")
    return out


# ---------------------------------------------------------------------------------------
# The figure
# ---------------------------------------------------------------------------------------

def _score_ticks(ax, edges: np.ndarray, integer: bool, nl_x: float | None) -> None:
    """Score ticks within the binned range (bin centres for integer scores), plus "never learned" at ``nl_x``."""
    if integer and len(edges) <= 16:
        ticks = list((edges[:-1] + edges[1:]) / 2)
    else:
        ax.set_xlim(edges[0] - 0.02 * (edges[-1] - edges[0]), (nl_x if nl_x is not None else edges[-1])
                    + 0.6 * (edges[1] - edges[0]))
        ticks = [t for t in ax.get_xticks() if edges[0] <= t <= edges[-1]]
    labels = [f"{t:g}" for t in ticks]
    if nl_x is not None:
        ticks.append(nl_x)
        labels.append("never\nlearned")
    ax.set_xticks(ticks, labels)


def _per_bin(counts: pd.DataFrame, name: str, correct) -> tuple[np.ndarray, int]:
    """Counts of set ``name`` with ``correct`` (True, False or NA for no split) per regular bin, and its never-learned count."""
    sel = counts[counts["set"] == name]
    sel = sel[sel["correct"].isna()] if correct is pd.NA else sel[sel["correct"].fillna(not correct) == correct]
    sel = sel.sort_values("bin")
    nl = sel["never_learned_bin"].to_numpy(dtype=bool)
    return sel.loc[~nl, "count"].to_numpy(), int(sel.loc[nl, "count"].sum())


def _layout(counts: pd.DataFrame, sets: list[str] | None) -> dict:
    """What both histogram drawings share: the chosen sets, bin edges and where the never-learned bar goes."""
    all_sets = list(pd.unique(counts["set"]))
    chosen = all_sets if sets is None else list(sets)
    unknown = [s for s in chosen if s not in all_sets]
    if unknown:
        raise ValueError(f"Sets {unknown} are not in the table; it has {all_sets}.")
    if not chosen:
        raise ValueError("Choose at least one set to plot.")
    regular = counts[~counts["never_learned_bin"]]
    edges = np.append(np.sort(regular["bin_lo"].unique()), regular["bin_hi"].max())
    widths = np.diff(edges)
    width = float(widths.mean())
    return {"chosen": chosen, "edges": edges, "widths": widths, "width": width,
            "nl_x": float(edges[-1] + 1.5 * width),  # the never-learned bar sits apart, right of the last bin
            "integer": not regular["bin_label"].astype(str).str.startswith("[").any(),
            "has_nl": int(counts.loc[counts["never_learned_bin"] & counts["set"].isin(chosen), "count"].sum()) > 0,
            "xlabel": f"{counts['score_name'].iloc[0]} under a full-data network", "ylabel": "real training samples"}


def _plot_overlay(counts: pd.DataFrame, lay: dict, log: bool) -> Figure:
    """Each set's wrong samples as a step line on one axes."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    colors = set_colors(lay["chosen"])
    edges, has_nl, nl_x, width = lay["edges"], lay["has_nl"], lay["nl_x"], lay["width"]
    for name in lay["chosen"]:
        if counts.loc[counts["set"] == name, "correct"].isna().all():
            raise ValueError(f"Set {name!r} has no right/wrong split: overlay compares the "
                             "wrong samples of trained sets.")
        wrong, wrong_nl = _per_bin(counts, name, False)
        label = f"{name} (wrong: {int(wrong.sum()) + wrong_nl}"
        label += f", {wrong_nl} never learned)" if has_nl else ")"
        ax.step(edges, np.append(wrong, wrong[-1]), where="post", color=colors[name], label=label)
        if has_nl:
            ax.scatter([nl_x], [wrong_nl], color=colors[name], marker="D", zorder=3)
    if has_nl:
        ax.axvspan(nl_x - width / 2, nl_x + width / 2, color="0.9", zorder=0)
    _score_ticks(ax, edges, lay["integer"], nl_x if has_nl else None)
    ax.set_xlabel(lay["xlabel"])
    ax.set_ylabel(f"{lay['ylabel']} classified wrong")
    ax.set_yscale("log" if log else "linear")
    ax.set_title("Wrong real samples by difficulty")
    ax.legend(title="synthetic set")
    fig.tight_layout()
    return fig


def _panel(ax, counts: pd.DataFrame, name: str, lay: dict) -> None:
    """One set's panel: stacked right and wrong bars (or all samples, with no split), never-learned hatched."""
    edges, widths, width, nl_x, has_nl = lay["edges"], lay["widths"], lay["width"], lay["nl_x"], lay["has_nl"]
    bar = {"width": widths, "align": "edge", "edgecolor": "white", "linewidth": 0.4}
    if counts.loc[counts["set"] == name, "correct"].isna().all():
        allc, all_nl = _per_bin(counts, name, pd.NA)
        ax.bar(edges[:-1], allc, color=ALL_COLOR, label=f"all samples ({int(allc.sum()) + all_nl})", **bar)
        if has_nl:
            ax.bar([nl_x], [all_nl], width=width, color=ALL_COLOR, hatch="//", edgecolor="white",
                   label=f"{NEVER_LEARNED}: {all_nl}")
        ax.set_title(name if name != NO_SET else "real training data")
        return
    right, right_nl = _per_bin(counts, name, True)
    wrong, wrong_nl = _per_bin(counts, name, False)
    ax.bar(edges[:-1], right, color=RIGHT_COLOR, label=f"right ({int(right.sum()) + right_nl})", **bar)
    ax.bar(edges[:-1], wrong, bottom=right, color=WRONG_COLOR, label=f"wrong ({int(wrong.sum()) + wrong_nl})", **bar)
    if has_nl:
        ax.bar([nl_x], [right_nl], width=width, color=RIGHT_COLOR, hatch="//", edgecolor="white")
        ax.bar([nl_x], [wrong_nl], bottom=[right_nl], width=width, color=WRONG_COLOR, hatch="//", edgecolor="white",
               label=f"{NEVER_LEARNED}: {right_nl + wrong_nl} ({right_nl} right)")
    total = int(right.sum() + wrong.sum()) + right_nl + wrong_nl
    acc = 100.0 * (int(right.sum()) + right_nl) / total if total else math.nan
    ax.set_title(f"{name}: {acc:.1f}% of real train right")


def plot_difficulty_histogram(table: pd.DataFrame, bins: int = 20, sets: list[str] | None = None,
                              overlay: bool = False, log: bool = False) -> Figure:
    """Histogram of the real training data over difficulty, one panel per set with stacked bars of the
    samples its network gets right and wrong (plus a hatched "never learned" bar when there are any);
    ``overlay=True`` instead draws each set's wrong samples as a step line on one axes. ``log=True``
    puts the counts on a log axis: most real samples are easy, so a linear axis hides the hard tail.

    This is the raw view of one network per set; the diagnosis compares sets with their controls in
    :func:`plot_error_by_difficulty` (error rate per bin against the random set's).
    """
    import matplotlib.pyplot as plt

    counts = histogram_counts(table, bins)
    lay = _layout(counts, sets)
    with dasm_style():
        if overlay:
            return _plot_overlay(counts, lay, log)
        chosen = lay["chosen"]
        fig, axes = plt.subplots(1, len(chosen), sharey=True, squeeze=False,
                                 figsize=(max(5.5, 3.6 * len(chosen)), 3.6))
        for ax, name in zip(axes[0], chosen):
            _panel(ax, counts, name, lay)
            _score_ticks(ax, lay["edges"], lay["integer"], lay["nl_x"] if lay["has_nl"] else None)
            ax.set_xlabel(lay["xlabel"])
            ax.set_yscale("log" if log else "linear")
            ax.legend()
        axes[0][0].set_ylabel(lay["ylabel"])
        fig.tight_layout()
        return fig


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
    t = table.assign(never_learned_bin=_as_bool(table["never_learned_bin"]).fillna(False).astype(bool))
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
