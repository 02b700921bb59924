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
from .style import dasm_style, set_colors

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


def gradient_alignment(net: nn.Module, data: Dataset, syn_x: Tensor, syn_y: Tensor, scores: Tensor,
                       deciles: int = 10, per_class: bool = True, max_per_class: int | None = None,
                       seed: int = 0, *, set_name: str | None = None, batch_size: int = 256) -> pd.DataFrame:
    """Cosine between the synthetic set's gradient and each real training sample's gradient under ``net``,
    one row per real sample: index, label, score, decile (global quantile bin of ``scores``, 0 = easiest), cosine.

    ``per_class``: compare each sample with the gradient of the mean loss over the synthetic images of its
    class (as class-wise gradient matching does), else with the whole set's gradient. ``syn_x`` is in pixel
    space; both sides go through ``data.normalize``. ``max_per_class`` subsamples the real data (seeded);
    ``set_name`` adds a ``set`` column for comparing several sets.
    """
    n = len(data.y_train)
    s = torch.as_tensor(scores).detach().reshape(-1).cpu()
    if len(s) != n:
        raise ValueError(f"scores has {len(s)} entries but {data.name} has {n} training samples.")
    _check_xy(syn_x, syn_y)
    if syn_x.shape[1:] != data.x_train.shape[1:]:
        raise ValueError(f"Synthetic images have shape {tuple(syn_x.shape[1:])} but {data.name} expects "
                         f"{tuple(data.x_train.shape[1:])}.")
    if max_per_class is not None and (isinstance(max_per_class, bool) or not isinstance(max_per_class, int)
                                      or max_per_class < 1):
        raise ValueError(f"max_per_class must be a positive int or None, got {max_per_class!r}.")
    dec = difficulty_deciles(s, deciles, seed)
    names = matched_parameters(net, "all")
    dev = _device(net)
    y_all = data.y_train.cpu()
    syn_cls = (syn_y.argmax(1) if syn_y.dim() == 2 else syn_y).cpu()
    g = torch.Generator().manual_seed(seed)

    def real_of(c: int) -> Tensor:
        ix = torch.nonzero(y_all == c, as_tuple=True)[0]
        if max_per_class is not None and len(ix) > max_per_class:
            ix = torch.sort(ix[torch.randperm(len(ix), generator=g)[:max_per_class]]).values
        return ix

    def syn_target(mask: Tensor | None) -> Tensor:
        xs, ys = (syn_x, syn_y) if mask is None else (syn_x[mask.to(syn_x.device)], syn_y[mask.to(syn_y.device)])
        return set_gradient(net, data.normalize(xs.detach().to(dev)), ys.to(dev), names, batch_size)

    chosen, targets, skipped = [], {}, []
    for c in range(data.num_classes):
        mask = syn_cls == c
        if per_class and not bool(mask.any()):
            skipped.append(c)
            continue
        ix = real_of(c)
        if len(ix):
            chosen.append(ix)
            if per_class:
                targets[c] = syn_target(mask)
    if skipped:
        warnings.warn(f"The synthetic set has no images of classes {skipped}: their real samples are left out.",
                      stacklevel=2)
    if not chosen:
        raise ValueError("No class has both real and synthetic samples: nothing to compare.")

    # One (classes, P) matrix of targets; every real sample is compared with its row (row 0 = the whole set).
    rows = torch.zeros(data.num_classes, dtype=torch.long)
    if per_class:
        for r, c in enumerate(targets):
            rows[c] = r
        target = torch.stack(list(targets.values()))
    else:
        target = syn_target(None).unsqueeze(0)
    ix = torch.sort(torch.cat(chosen)).values
    cos = []
    for i in range(0, len(ix), batch_size):
        part = ix[i:i + batch_size]
        x = data.normalize(data.x_train[part.to(data.x_train.device)].to(dev))
        y = y_all[part].to(dev)
        (block,) = _iter_per_sample_gradients(net, x, y, names, len(part))
        t = target[rows[y_all[part]].to(dev)]
        cos.append(F.cosine_similarity(block, t, dim=1, eps=1e-12).cpu())
    table = pd.DataFrame({"index": ix.numpy().astype(np.int64), "label": y_all[ix].numpy().astype(np.int64),
                          "score": s[ix].double().numpy(), "decile": dec[ix.numpy()],
                          "cosine": torch.cat(cos).double().numpy()})
    if set_name is not None:
        table["set"] = str(set_name)
    return table


# ---------------------------------------------------------------------------------------
# Summary and figure
# ---------------------------------------------------------------------------------------

def alignment_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per decile (and per ``set`` when the table has that column): mean, std, count and standard error of
    the cosine, a normal 95% interval (ci_lo, ci_hi) and the mean difficulty score."""
    missing = [c for c in ("decile", "cosine") if c not in table.columns]
    if missing:
        raise ValueError(f"The table lacks the columns {missing}; build it with gradient_alignment().")
    if table.empty:
        raise ValueError("The alignment table is empty.")
    keys = (["set"] if "set" in table.columns else []) + ["decile"]
    agg = {"mean": ("cosine", "mean"), "std": ("cosine", "std"), "count": ("cosine", "size")}
    if "score" in table.columns:
        agg["score_mean"] = ("score", "mean")
    out = table.groupby(keys, sort=True).agg(**agg).reset_index()
    out["std"] = out["std"].fillna(0.0)
    out["sem"] = out["std"] / np.sqrt(out["count"])
    out["ci_lo"] = out["mean"] - 1.96 * out["sem"]
    out["ci_hi"] = out["mean"] + 1.96 * out["sem"]
    return out


def plot_alignment(table: pd.DataFrame) -> Figure:
    """Mean cosine between the synthetic and the per-sample gradients against difficulty decile, one line per
    ``set`` (a method's own colour when the set is named after one) with a 95% interval band."""
    import matplotlib.pyplot as plt

    summary = alignment_summary(table)
    if "set" not in summary.columns:
        summary = summary.assign(set=DEFAULT_SET)
    sets = list(pd.unique(summary["set"].astype(str)))
    summary["set"] = summary["set"].astype(str)
    with dasm_style():
        fig, ax = plt.subplots()
        colors = set_colors(sets)
        for name in sets:
            rows = summary[summary["set"] == name].sort_values("decile")
            color = colors[name]
            ax.plot(rows["decile"], rows["mean"], marker="o", markersize=3.5, color=color,
                    label=f"{name} (n={int(rows['count'].sum())})")
            ax.fill_between(rows["decile"], rows["ci_lo"], rows["ci_hi"], color=color, alpha=0.2, linewidth=0)
        deciles = np.sort(summary["decile"].unique())
        if len(deciles) <= 20:
            ax.set_xticks(deciles)
        ax.set_xlabel("difficulty decile (0 = easiest)")
        ax.set_ylabel("cosine(synthetic gradient, sample gradient)")
        ax.set_title("Gradient alignment by difficulty (mean, 95% interval)")
        ax.legend(title="synthetic set")
        fig.tight_layout()
        return fig

