"""Accuracy by difficulty: the central view of the easy-sample-bias diagnosis.

Difficulty of every test image is its cross-entropy under reference networks trained on the
whole training set (the mean over several seeds), never under the network being judged. Each
class is cut into ``n`` equal bins of that difficulty (decile 0 holds the easiest tenth of
*every* class), and every evaluated network's saved predictions (``predictions/`` of its run
folder, :func:`dasm.evaluate.save_predictions`) give its accuracy per bin. No network is trained
here: a diagnosis only reads what evaluation kept.

The ``full`` networks are the references themselves, so their own accuracy is measured against
the difficulty of the *other* references (leave one out): a network is never graded on a scale it
defined. :func:`bias_contrast` turns the table into the bias in one number per seed, paired.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import Tensor

from ..evaluate import load_predictions
from .controls import line_style, set_order
from .style import dasm_style, method_color

EASY, HARD = (0, 1, 2), (7, 8, 9)   # the easiest and hardest three deciles of bias_contrast


def difficulty(logits: list[Tensor], y: Tensor) -> Tensor:
    """Mean cross-entropy of each sample under the networks whose ``logits`` (N, K) are given."""
    if not logits:
        raise ValueError("difficulty needs the logits of at least one reference network.")
    return torch.stack([F.cross_entropy(z.float(), y, reduction="none") for z in logits]).mean(0)


def class_bins(scores: Tensor, y: Tensor, n: int = 10) -> Tensor:
    """Bin of every sample (0 = easiest) such that each bin holds ``1/n`` of every class.

    Within a class samples are ranked by score (ties by index), and rank r of m lands in bin
    ``floor(r * n / m)``, so bin sizes differ by at most one inside a class.
    """
    if len(scores) != len(y):
        raise ValueError(f"{len(scores)} scores for {len(y)} labels.")
    bins = torch.empty(len(y), dtype=torch.long)
    for c in torch.unique(y):
        ix = torch.nonzero(y == c, as_tuple=True)[0]
        order = ix[torch.argsort(scores[ix].float(), stable=True)]
        bins[order] = torch.arange(len(ix)) * n // len(ix)
    return bins


def accuracy_by_bin(correct: Tensor, bins: Tensor, n: int = 10) -> pd.DataFrame:
    """``decile``, ``value`` (accuracy in percent) and ``n`` (samples) of each bin of a boolean ``correct``."""
    rows = []
    for b in range(n):
        hit = correct[bins == b]
        rows.append({"decile": b, "value": 100.0 * hit.float().mean().item() if len(hit) else float("nan"),
                     "n": int(len(hit))})
    return pd.DataFrame(rows)


def prediction_records(folders: list[str | os.PathLike]) -> list[dict]:
    """Every evaluation's saved predictions under ``folders`` (run folders, searched recursively)."""
    return [load_predictions(f) for d in map(Path, folders) for f in sorted(d.rglob("predictions/*.pt"))]


def predicted(record: dict, split: str = "test") -> Tensor:
    """The predicted class of every ``split`` image in a record: its ``pred`` if kept, else the argmax of its logits."""
    if "pred" in record and split in record["pred"]:
        return record["pred"][split].long()
    return record["logits"][split].argmax(1)


def by_difficulty_table(records: list[dict], y_test: Tensor, *, dataset: str, n: int = 10,
                        reference: str = "full") -> pd.DataFrame:
    """Test accuracy per difficulty bin of every evaluation in ``records``, as a tidy table.

    A record is what :func:`dasm.evaluate.load_predictions` returns (or a compact copy holding only the
    predicted classes, ``pred``): ``method, ipc, seed, arch`` and the network's test predictions. The
    ``reference`` method's records (full-data networks, at least two, with their ``logits``) define the
    difficulty; each of them is graded on the difficulty of the others. Columns: ``dataset, method, ipc,
    seed, arch, decile, metric, value, n`` (``metric = test_acc``).
    """
    refs = [r for r in records if r.get("method") == reference]
    if len(refs) < 2:
        raise ValueError(f"by_difficulty_table needs at least two {reference!r} networks' predictions to define "
                         f"difficulty (and grade each on the others'); got {len(refs)}. Train them with "
                         "dasm.runs.full_data_run(..., seeds=[0, 1, 2]).")
    if any(len(predicted(r)) != len(y_test) for r in records):
        raise ValueError("predictions of different test sets were mixed; give one dataset's records.")
    bins = class_bins(difficulty([r["logits"]["test"] for r in refs], y_test), y_test, n)
    frames = []
    for rec in records:
        own = bins
        if rec.get("method") == reference:   # leave one out
            others = [r["logits"]["test"] for r in refs if r is not rec]
            own = class_bins(difficulty(others, y_test), y_test, n)
        frames.append(accuracy_by_bin(predicted(rec) == y_test, own, n).assign(
            dataset=dataset, method=rec.get("method", "unknown"), ipc=int(rec.get("ipc", 0)),
            seed=int(rec["seed"]), arch=rec.get("arch", "convnet"), metric="test_acc"))
    table = pd.concat(frames, ignore_index=True)
    columns = ["dataset", "method", "ipc", "seed", "arch", "decile", "metric", "value", "n"]
    return table[columns].sort_values(["ipc", "method", "seed", "decile"]).reset_index(drop=True)


def relative_to_full(table: pd.DataFrame, reference: str = "full") -> pd.DataFrame:
    """Each set's per-bin accuracy minus the ``reference`` networks' mean accuracy in the same bin (``gap``)."""
    full = table[table.method == reference].groupby("decile").value.mean().rename("full_value")
    out = table[table.method != reference].merge(full, left_on="decile", right_index=True)
    return out.assign(gap=out.value - out.full_value)


def bias_contrast(table: pd.DataFrame, method: str, baseline: str, *, hard: tuple[int, ...] = HARD,
                  easy: tuple[int, ...] = EASY) -> pd.DataFrame:
    """The bias in one number per (IPC, seed): (``method`` − ``baseline``) on the ``hard`` bins minus the
    same on the ``easy`` bins, both sets evaluated with the same seed. Positive: ``method`` gains more,
    relative to ``baseline``, on hard images than on easy ones."""
    acc = table[table.method.isin([method, baseline])]

    def part(bins: tuple[int, ...]) -> pd.Series:
        sel = acc[acc.decile.isin(bins)]
        # accuracy over the bins' images (bins of one class-balanced size each: the mean of bin accuracies
        # weighted by their counts)
        agg = sel.assign(hit=sel.value * sel.n).groupby(["ipc", "seed", "method"])[["hit", "n"]].sum()
        return (agg.hit / agg.n).unstack("method")

    h, e = part(hard), part(easy)
    if method not in h.columns or baseline not in h.columns:
        return pd.DataFrame(columns=["ipc", "seed", "method", "baseline", "hard_gain", "easy_gain", "contrast"])
    out = pd.DataFrame({"hard_gain": h[method] - h[baseline], "easy_gain": e[method] - e[baseline]}).dropna()
    out["contrast"] = out.hard_gain - out.easy_gain
    return out.reset_index().assign(method=method, baseline=baseline)[
        ["ipc", "seed", "method", "baseline", "hard_gain", "easy_gain", "contrast"]]


def paired_summary(values: pd.Series) -> dict[str, float]:
    """Mean, std, count, the 95% confidence interval of the mean (t distribution) and the two-sided p
    of a one-sample t-test against zero, for values paired by seed (NaN where fewer than two)."""
    from scipy import stats

    v = np.asarray(values, dtype=float)
    out = {"mean": float(v.mean()) if len(v) else float("nan"), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
           "count": int(len(v)), "ci_low": float("nan"), "ci_high": float("nan"), "p": float("nan")}
    if len(v) > 1:
        half = stats.t.ppf(0.975, len(v) - 1) * out["std"] / np.sqrt(len(v))
        out.update(ci_low=out["mean"] - half, ci_high=out["mean"] + half)
        out["p"] = float(stats.ttest_1samp(v, 0.0).pvalue) if out["std"] > 0 else float("nan")
    return out


def seeds_label(part: pd.DataFrame) -> str:
    """How many seeds each method of ``part`` has, for a panel's title: ``3 seeds`` or ``1–3 seeds``."""
    counts = part.groupby("method").seed.nunique()
    low, high = int(counts.min()), int(counts.max())
    return f"{low if low == high else f'{low}–{high}'} seed{'s' if high > 1 else ''}"


def plot_by_difficulty(table: pd.DataFrame, reference: str = "full") -> Figure:
    """Accuracy per difficulty decile relative to the full-data networks: one panel per IPC, one line per
    method (mean over seeds), a band of ± one std over seeds. Draws a :func:`by_difficulty_table`."""
    import matplotlib.pyplot as plt

    rel = relative_to_full(table, reference)
    if rel.empty:
        raise ValueError("no set besides the full-data networks in the table: nothing to compare.")
    ipcs = sorted(rel.ipc.unique())
    with dasm_style():
        width, height = plt.rcParams["figure.figsize"]
        fig, axes = plt.subplots(1, len(ipcs), figsize=(width * len(ipcs) * 0.8 + 1.8, height), squeeze=False,
                                 sharey=True)
        for ax, ipc in zip(axes[0], ipcs):
            part = rel[rel.ipc == ipc]
            for method in set_order(part.method):   # the controls first, dashed
                s = part[part.method == method].groupby("decile").gap.agg(["mean", "std"])
                style = line_style(method)
                ax.plot(s.index, s["mean"], marker="o", ms=3, **style, label=method)
                ax.fill_between(s.index, s["mean"] - s["std"].fillna(0), s["mean"] + s["std"].fillna(0),
                                color=style["color"], alpha=0.15, linewidth=0)
            ax.axhline(0.0, color=method_color(reference), linewidth=1, label=f"{reference} data")
            ax.set_xticks(range(int(rel.decile.max()) + 1))
            ax.set_xlabel("test-image difficulty decile\n(0 = easiest, by full-data networks)")
            ax.set_title(f"IPC {ipc} ({seeds_label(part)})")
        axes[0][0].set_ylabel("accuracy minus full-data networks' (points)")
        axes[0][-1].legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), title="set")
        fig.tight_layout()
    return fig


__all__ = ["EASY", "HARD", "difficulty", "class_bins", "accuracy_by_bin", "prediction_records", "predicted", "by_difficulty_table",
           "relative_to_full", "bias_contrast", "paired_summary", "seeds_label",
           "plot_by_difficulty"]
