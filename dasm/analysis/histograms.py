"""Right/wrong difficulty histograms of one network per set: how a set's network does on the real training
images of each difficulty.

:func:`difficulty_table` gives one row per (training image, set): its difficulty under a full-data network
(loss, or forgetting events) and whether the set's network gets it right; :func:`histogram_counts` bins it
and :func:`plot_difficulty_histogram` draws it, for notebooks and panels. These histograms are lopsided by
construction (a loss above ln K is always a wrong answer); the controlled diagnosis, error rates against a
control's, is :mod:`dasm.analysis.errors`.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from torch import Tensor, nn

from ..data import Dataset
from ..train import predict
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


def as_bool(col: pd.Series) -> pd.Series:
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
    nl = as_bool(table["never_learned"]).fillna(False).to_numpy(dtype=bool)
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

    correct = as_bool(table["correct"])
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
