"""Gradient alignment by difficulty: which real samples does a synthetic set's gradient speak for?

Gradient matching makes the synthetic set's gradient point where the *average* real gradient
points, and that average is dominated by the many easy samples. Measuring the cosine between
the synthetic set's (class) gradient and each real sample's gradient, binned by the sample's
difficulty, shows it: the cosine falls from the easy deciles to the hard ones.

:func:`gradient_alignment` builds the tidy table (one row per real sample),
:func:`alignment_summary` reduces it per decile (and per ``set`` when several synthetic sets
are compared by concatenating their tables), :func:`plot_alignment` draws it. Per-sample
gradients are computed with ``torch.func`` (``functional_call`` + ``vmap(grad)``), in chunks,
so the (N, P) matrix is never held whole unless asked for with :func:`per_sample_gradients`.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import Tensor, nn
from torch.func import functional_call, grad, vmap

from ..data import Dataset
from ..matching import matched_parameters
from .controls import BASELINE, FULL, line_style, numbers_frame, paired_gap, set_order
from .style import dasm_style

TABLE_COLUMNS = ("index", "label", "score", "decile", "cosine")
DEFAULT_SET = "synthetic set"


# ---------------------------------------------------------------------------------------
# Gradients
# ---------------------------------------------------------------------------------------

def _names(net: nn.Module, names: list[str] | None) -> list[str]:
    if names is None:
        return matched_parameters(net, "all")
    known = dict(net.named_parameters())
    bad = [n for n in names if n not in known]
    if bad:
        raise ValueError(f"{type(net).__name__} has no parameters {bad}; it has {list(known)}.")
    if not names:
        raise ValueError("names is empty: pass at least one parameter name (or None for the matched ones).")
    return list(names)


def _device(net: nn.Module) -> torch.device:
    p = next(net.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def _check_xy(x: Tensor, y: Tensor) -> None:
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} samples but y has {len(y)} labels.")
    if len(x) == 0:
        raise ValueError("Got no samples: gradients need at least one.")


def _iter_per_sample_gradients(net: nn.Module, x: Tensor, y: Tensor, names: list[str],
                               batch_size: int) -> Iterator[Tensor]:
    """Yield (B, P) blocks of flattened per-sample cross-entropy gradients, chunk by chunk, in eval mode."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}.")
    dev = _device(net)
    params = {n: p.detach() for n, p in net.named_parameters()}
    buffers = {n: b.detach() for n, b in net.named_buffers()}
    sel = {n: params[n] for n in names}

    def loss(p_sel: dict[str, Tensor], xi: Tensor, yi: Tensor) -> Tensor:
        logits = functional_call(net, ({**params, **p_sel}, buffers), (xi.unsqueeze(0),))
        return F.cross_entropy(logits, yi.unsqueeze(0))

    per_sample = vmap(grad(loss), in_dims=(None, 0, 0))
    was_training = net.training
    net.eval()  # per-sample gradients are only defined without batch statistics
    try:
        for i in range(0, len(x), batch_size):
            xb = x[i:i + batch_size].detach().to(dev)
            yb = y[i:i + batch_size].detach().to(dev)
            g = per_sample(sel, xb, yb)
            yield torch.cat([g[n].reshape(len(xb), -1) for n in names], dim=1)
    finally:
        net.train(was_training)


def per_sample_gradients(net: nn.Module, x: Tensor, y: Tensor, names: list[str] | None = None,
                         batch_size: int = 256) -> Tensor:
    """(N, P) flattened per-sample cross-entropy gradients w.r.t. the parameters ``names`` (default: the matched
    weights, ``matched_parameters(net, "all")``), in ``names`` order, with ``net`` in eval mode; ``x`` already
    normalised.

    The result lives on the network's device and holds N x P floats: for big nets use chunks of ``x``.
    """
    _check_xy(x, y)
    names = _names(net, names)
    return torch.cat(list(_iter_per_sample_gradients(net, x, y, names, batch_size)))


def set_gradient(net: nn.Module, x: Tensor, y: Tensor, names: list[str] | None = None,
                 batch_size: int = 256) -> Tensor:
    """(P,) gradient of the mean cross-entropy over the whole set ``(x, y)`` (hard or soft labels, inputs
    already normalised) w.r.t. ``names``, flattened in the same order as :func:`per_sample_gradients`."""
    _check_xy(x, y)
    names = _names(net, names)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}.")
    dev = _device(net)
    chosen = dict(net.named_parameters())
    chosen = [chosen[n] for n in names]
    total = [torch.zeros_like(p) for p in chosen]
    was_training = net.training
    net.eval()
    try:
        for i in range(0, len(x), batch_size):
            xb = x[i:i + batch_size].detach().to(dev)
            yb = y[i:i + batch_size].detach().to(dev)
            loss = F.cross_entropy(net(xb), yb, reduction="sum") / len(x)
            for t, g in zip(total, torch.autograd.grad(loss, chosen)):
                t += g
    finally:
        net.train(was_training)
    return torch.cat([t.reshape(-1) for t in total])


# ---------------------------------------------------------------------------------------
# The table
# ---------------------------------------------------------------------------------------

def difficulty_deciles(scores: Tensor, deciles: int = 10, seed: int = 0) -> np.ndarray:
    """Equal-size quantile bins of ``scores`` over all samples (0 = easiest); ties are broken at random
    (seeded), so tied scores such as forgetting counts still fill every bin."""
    s = torch.as_tensor(scores).detach().reshape(-1).double().cpu().numpy()
    if np.isnan(s).any():
        raise ValueError(f"{int(np.isnan(s).sum())} scores are NaN; deciles need comparable scores.")
    if isinstance(deciles, bool) or not isinstance(deciles, int) or deciles < 1:
        raise ValueError(f"deciles must be a positive int, got {deciles!r}.")
    tiebreak = np.random.default_rng(seed).permutation(len(s))
    order = np.lexsort((tiebreak, s))
    rank = np.empty(len(s), dtype=np.int64)
    rank[order] = np.arange(len(s))
    return (rank * deciles // max(len(s), 1)).astype(np.int64)


def _real_subset(data: Dataset, max_per_class: int | None, seed: int) -> Tensor:
    """Sorted indices of the real training images compared: all, or ``max_per_class`` of every class (seeded)."""
    if max_per_class is not None and (isinstance(max_per_class, bool) or not isinstance(max_per_class, int)
                                      or max_per_class < 1):
        raise ValueError(f"max_per_class must be a positive int or None, got {max_per_class!r}.")
    y_all = data.y_train.cpu()
    g = torch.Generator().manual_seed(seed)
    chosen = []
    for c in range(data.num_classes):
        ix = torch.nonzero(y_all == c, as_tuple=True)[0]
        if max_per_class is not None and len(ix) > max_per_class:
            ix = torch.sort(ix[torch.randperm(len(ix), generator=g)[:max_per_class]]).values
        chosen.append(ix)
    return torch.sort(torch.cat(chosen)).values


def _targets(net: nn.Module, data: Dataset, x: Tensor, y: Tensor, names: list[str], batch_size: int,
             per_class: bool) -> tuple[Tensor, Tensor]:
    """The gradients real samples are compared with, as a (T, P) matrix, and each class's row in it (-1: the
    set has no image of that class). ``per_class``: one gradient per class of ``(x, y)``, else one for all."""
    _check_xy(x, y)
    if x.shape[1:] != data.x_train.shape[1:]:
        raise ValueError(f"Synthetic images have shape {tuple(x.shape[1:])} but {data.name} expects "
                         f"{tuple(data.x_train.shape[1:])}.")
    dev = _device(net)

    def grad_of(xs: Tensor, ys: Tensor) -> Tensor:
        return set_gradient(net, data.normalize(xs.detach().to(dev)), ys.to(dev), names, batch_size)

    if not per_class:
        return grad_of(x, y).unsqueeze(0), torch.zeros(data.num_classes, dtype=torch.long)
    cls = (y.argmax(1) if y.dim() == 2 else y).cpu()
    rows, targets = torch.full((data.num_classes,), -1, dtype=torch.long), []
    for c in range(data.num_classes):
        mask = cls == c
        if bool(mask.any()):
            rows[c] = len(targets)
            targets.append(grad_of(x[mask.to(x.device)], y[mask.to(y.device)]))
    if not targets:
        raise ValueError("No class has both real and synthetic samples: nothing to compare.")
    return torch.stack(targets), rows


def _cosines(net: nn.Module, data: Dataset, ix: Tensor, targets: dict[str, tuple[Tensor, Tensor]],
             names: list[str], batch_size: int) -> dict[str, np.ndarray]:
    """Cosine between every real sample ``ix``'s gradient (computed once) and its class's row of each target
    (NaN where a target has no row for the class)."""
    dev = _device(net)
    y_all = data.y_train.cpu()
    out: dict[str, list[Tensor]] = {name: [] for name in targets}
    for i in range(0, len(ix), batch_size):
        part = ix[i:i + batch_size]
        x = data.normalize(data.x_train[part.to(data.x_train.device)].to(dev))
        y = y_all[part]
        (block,) = _iter_per_sample_gradients(net, x, y.to(dev), names, len(part))
        for name, (target, rows) in targets.items():
            r = rows[y]
            cos = F.cosine_similarity(block, target[r.clamp(min=0).to(dev)], dim=1, eps=1e-12).cpu().double()
            out[name].append(torch.where(r >= 0, cos, torch.full_like(cos, float("nan"))))
    return {name: torch.cat(parts).numpy() for name, parts in out.items()}


def _check_scores(data: Dataset, scores: Tensor) -> Tensor:
    s = torch.as_tensor(scores).detach().reshape(-1).cpu()
    if len(s) != len(data.y_train):
        raise ValueError(f"scores has {len(s)} entries but {data.name} has {len(data.y_train)} training samples.")
    return s


def alignment_table(net: nn.Module, data: Dataset, sets: dict[str, tuple[Tensor, Tensor]], scores: Tensor, *,
                    deciles: int = 10, max_per_class: int | None = None, seed: int = 0, full: bool = True,
                    per_class: bool = True, batch_size: int = 256) -> pd.DataFrame:
    """Cosine between each set's class gradient and every real training sample's gradient under ``net``: one row
    per (set, real sample) with ``set, seed, index, label, score, decile`` (global quantile bin of ``scores``,
    0 = easiest) and ``cosine``.

    ``sets`` maps a name (its method: ``random`` and ``<base>-starts`` are the controls) to pixel-space images
    and labels. ``full`` adds the reference curve ``full``: the class gradient of *all* real data of the class,
    i.e. how well the full data's mean gradient speaks for its own samples. The real gradients are computed
    once for every set; ``max_per_class`` subsamples them (seeded), ``seed`` also fills the ``seed`` column.
    A set without images of some class has no rows for that class's samples (with a warning).
    """
    s = _check_scores(data, scores)
    dec = difficulty_deciles(s, deciles, seed)
    names = matched_parameters(net, "all")
    targets = {name: _targets(net, data, x, y, names, batch_size, per_class) for name, (x, y) in sets.items()}
    if full:
        targets[FULL] = _targets(net, data, data.x_train, data.y_train, names, batch_size, per_class)
    if not targets:
        raise ValueError("Give at least one set (or full=True) to compare with.")
    ix = _real_subset(data, max_per_class, seed)
    cos = _cosines(net, data, ix, targets, names, batch_size)
    base = pd.DataFrame({"index": ix.numpy().astype(np.int64), "label": data.y_train.cpu()[ix].numpy().astype(np.int64),
                         "score": s[ix].double().numpy(), "decile": dec[ix.numpy()]})
    frames = []
    for name, values in cos.items():
        keep = ~np.isnan(values)
        missing = sorted(set(base.loc[~keep, "label"].tolist()))
        if missing:
            warnings.warn(f"The set {name!r} has no images of classes {missing}: their real samples are left out.",
                          stacklevel=2)
        frames.append(base[keep].assign(set=str(name), seed=int(seed), cosine=values[keep]))
    return pd.concat(frames, ignore_index=True)[["set", "seed", *TABLE_COLUMNS]]


def gradient_alignment(net: nn.Module, data: Dataset, syn_x: Tensor, syn_y: Tensor, scores: Tensor,
                       deciles: int = 10, per_class: bool = True, max_per_class: int | None = None,
                       seed: int = 0, *, set_name: str | None = None, batch_size: int = 256) -> pd.DataFrame:
    """Cosine between the synthetic set's gradient and each real training sample's gradient under ``net``,
    one row per real sample: index, label, score, decile (global quantile bin of ``scores``, 0 = easiest), cosine.

    ``per_class``: compare each sample with the gradient of the mean loss over the synthetic images of its
    class (as class-wise gradient matching does), else with the whole set's gradient. ``syn_x`` is in pixel
    space; both sides go through ``data.normalize``. ``max_per_class`` subsamples the real data (seeded);
    ``set_name`` adds a ``set`` column for comparing several sets. One set, no controls: the diagnosis uses
    :func:`alignment_table`.
    """
    _check_scores(data, scores)
    table = alignment_table(net, data, {DEFAULT_SET: (syn_x, syn_y)}, scores, deciles=deciles,
                            max_per_class=max_per_class, seed=seed, full=False, per_class=per_class,
                            batch_size=batch_size)
    table = table.drop(columns=["set", "seed"])
    if set_name is not None:
        table["set"] = str(set_name)
    return table.reset_index(drop=True)


# ---------------------------------------------------------------------------------------
# Summary and figure
# ---------------------------------------------------------------------------------------

def alignment_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per decile (and per ``set`` and ``seed`` when the table has those columns): mean, std, count and standard
    error of the cosine, a normal 95% interval (ci_lo, ci_hi) and the mean difficulty score. Small enough to
    keep: :func:`plot_alignment` and :func:`alignment_numbers` work from it as from the per-sample table."""
    missing = [c for c in ("decile", "cosine") if c not in table.columns]
    if missing:
        raise ValueError(f"The table lacks the columns {missing}; build it with gradient_alignment().")
    if table.empty:
        raise ValueError("The alignment table is empty.")
    keys = [k for k in ("set", "seed") if k in table.columns] + ["decile"]
    agg = {"mean": ("cosine", "mean"), "std": ("cosine", "std"), "count": ("cosine", "size")}
    if "score" in table.columns:
        agg["score_mean"] = ("score", "mean")
    out = table.groupby(keys, sort=True).agg(**agg).reset_index()
    out["std"] = out["std"].fillna(0.0)
    out["sem"] = out["std"] / np.sqrt(out["count"])
    out["ci_lo"] = out["mean"] - 1.96 * out["sem"]
    out["ci_hi"] = out["mean"] + 1.96 * out["sem"]
    return out


def _per_seed(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`alignment_summary` per set, seed and decile, of a per-sample table or of such a summary itself."""
    t = table if "set" in table.columns else table.assign(set=DEFAULT_SET)
    t = t if "seed" in t.columns else t.assign(seed=0)
    return t if "cosine" not in t.columns and {"mean", "count", "ci_lo"} <= set(t.columns) else alignment_summary(t)


def alignment_curves(table: pd.DataFrame) -> pd.DataFrame:
    """Per set and decile: the mean cosine over seeds of each seed's mean (``mean``), the band drawn around it
    (``lo``, ``hi``: ± one std over seeds when there are several, else the 95% interval over samples),
    ``seeds`` and ``count`` (samples)."""
    per_seed = _per_seed(table)
    agg = {"mean": ("mean", "mean"), "spread": ("mean", "std"), "seeds": ("seed", "nunique"),
           "count": ("count", "sum"), "ci_lo": ("ci_lo", "first"), "ci_hi": ("ci_hi", "first")}
    if "score_mean" in per_seed.columns:
        agg["score_mean"] = ("score_mean", "mean")
    out = per_seed.groupby(["set", "decile"]).agg(**agg).reset_index()
    several = out["seeds"] > 1
    out["lo"] = np.where(several, out["mean"] - out["spread"].fillna(0.0), out["ci_lo"])
    out["hi"] = np.where(several, out["mean"] + out["spread"].fillna(0.0), out["ci_hi"])
    return out.drop(columns=["spread", "ci_lo", "ci_hi"])


def alignment_numbers(table: pd.DataFrame, easy: tuple[int, ...] = (0, 1, 2), hard: tuple[int, ...] = (7, 8, 9),
                      baseline: str = BASELINE, reference: str = FULL) -> pd.DataFrame:
    """The numbers the docs quote, per set and seed (:func:`~dasm.analysis.controls.numbers_frame`):
    ``easy_cosine`` and ``hard_cosine`` (mean cosine on the ``easy`` and ``hard`` deciles), ``drop`` (easy
    minus hard: how much less the set's gradient speaks for hard samples), and ``drop_gap`` against the
    ``reference`` (full data) and the ``baseline`` (random set) on the same seed: positive = the set leans
    towards the easy samples more than the control does."""
    t = _per_seed(table)
    t = t.assign(total=t["mean"] * t["count"])

    def part(deciles: tuple[int, ...]) -> pd.Series:   # the mean over the samples of those deciles
        sums = t[t["decile"].isin(deciles)].groupby(["set", "seed"])[["total", "count"]].sum()
        return sums["total"] / sums["count"]
    per = pd.concat({"easy_cosine": part(easy), "hard_cosine": part(hard)}, axis=1).reset_index()
    per["drop"] = per["easy_cosine"] - per["hard_cosine"]
    rows = []
    for control in (reference, baseline):
        per[f"gap_{control}"] = paired_gap(per, "drop", ["seed"], control)
    for r in per.to_dict("records"):
        common = {"figure": "alignment", "set": r["set"], "seed": int(r["seed"])}
        rows += [{**common, "metric": m, "value": float(r[m])} for m in ("easy_cosine", "hard_cosine", "drop")]
        rows += [{**common, "metric": "drop_gap", "baseline": c, "value": float(r[f"gap_{c}"])}
                 for c in (reference, baseline)]
    return numbers_frame(rows)


def plot_alignment(table: pd.DataFrame) -> Figure:
    """From a per-sample table or its :func:`alignment_summary`: mean cosine between each set's gradient and the per-sample gradients against difficulty decile, one line
    per ``set`` (a method's own colour when the set is named after one; the controls ``random`` and
    ``*-starts`` dashed, ``full`` dotted black), with a band: ± one std over seeds when the table has several
    seeds, else the 95% interval over samples."""
    import matplotlib.pyplot as plt

    from .style import set_colors

    curves = alignment_curves(table)
    sets = set_order(curves["set"])
    seeds = int(curves["seeds"].max())
    with dasm_style():
        fig, ax = plt.subplots(figsize=(6.4, 3.8))
        colors = set_colors(sets)
        for name in sets:
            rows = curves[curves["set"] == name].sort_values("decile")
            style = {**line_style(name), "color": colors[name]}
            ax.plot(rows["decile"], rows["mean"], marker="o", markersize=3.5,
                    label=f"{name} (n={int(rows['count'].sum())})", **style)
            ax.fill_between(rows["decile"], rows["lo"], rows["hi"], color=style["color"], alpha=0.2, linewidth=0)
        deciles = np.sort(curves["decile"].unique())
        if len(deciles) <= 20:
            ax.set_xticks(deciles)
        ax.set_xlabel("difficulty decile (0 = easiest)")
        ax.set_ylabel("cosine(synthetic gradient, sample gradient)")
        band = f"mean ± std over {seeds} seeds" if seeds > 1 else "mean, 95% interval"
        ax.set_title(f"Gradient alignment by difficulty ({band})")
        ax.legend(title="set", loc="upper left", bbox_to_anchor=(1.02, 1.0))
        fig.tight_layout()
        return fig
