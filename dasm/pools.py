"""Difficulty pools: which real samples of each class a DASM segment is matched against.

Scores are ranked within each class (higher = harder) and each policy picks a quantile range
that moves from easy (segment 0) to hard (segment K-1): a sliding ``window``, a ``grow``-ing
window (everything up to the window's upper edge), a ``threshold`` (drop the easiest), or
``weighted`` sampling centred on the window; ``none`` keeps every sample.
"""

from __future__ import annotations

import json
from dataclasses import replace

import torch
from torch import Tensor

from .data import Dataset

POLICIES = ("window", "grow", "threshold", "weighted", "none")


def window_bounds(k: int, segments: int, window: float) -> tuple[float, float]:
    """Quantile window [lo, hi] of segment ``k`` (0-based): [0, w] for the first, [1 - w, 1] for the last."""
    if segments == 1:
        return 0.0, 1.0
    lo = (1.0 - window) * k / (segments - 1)
    return lo, lo + window


def pool_bounds(policy: str, k: int, segments: int, window: float) -> tuple[float, float]:
    """The per-class quantile range [lo, hi] that ``policy`` draws segment ``k``'s pool from."""
    lo, hi = window_bounds(k, segments, window)
    if policy == "grow":
        return 0.0, hi
    if policy == "threshold":
        return lo, 1.0
    if policy == "none":
        return 0.0, 1.0
    return lo, hi


def select_pools(scores: Tensor, class_index: list[Tensor], k: int, segments: int, policy: str = "window",
                 window: float = 0.5, generator: torch.Generator | None = None,
                 min_per_class: int = 1) -> list[Tensor]:
    """Per-class real-sample pools for segment ``k`` (0-based) chosen by difficulty ``scores`` (higher = harder).

    Ranks are taken within each class, so every class contributes; a pool never has fewer
    than ``min_per_class`` samples (or the whole class, if smaller).
    """
    if policy not in POLICIES:
        raise ValueError(f"Unknown policy {policy!r}; choose one of {', '.join(POLICIES)}.")
    lo, hi = pool_bounds(policy, k, segments, window)
    pools = []
    for ix in class_index:
        n = len(ix)
        if policy == "none" or n == 0:
            pools.append(ix)
            continue
        order = torch.argsort(scores[ix].float(), stable=True)        # easy -> hard
        keep_n = max(min(min_per_class, n), 1)
        if policy != "weighted":                                       # the ranks in [lo, hi] of pool_bounds
            a = int(round(lo * n))
            b = min(max(int(round(hi * n)), a + keep_n), n)
            a = max(0, min(a, b - keep_n))
            chosen = order[a:b]
        else:                                                          # weighted, centred on the window
            m = max(keep_n, int(round(window * n)))
            rank = torch.empty(n, device=ix.device)
            rank[order] = torch.arange(n, device=ix.device, dtype=torch.float32) / max(n - 1, 1)
            centre, width = (lo + hi) / 2, max(window / 2, 1e-3)
            w = torch.softmax(-0.5 * ((rank - centre) / width) ** 2, 0) + 1e-12  # never all zero
            chosen = torch.multinomial(w.cpu(), m, replacement=False, generator=generator).to(ix.device)
        pools.append(torch.sort(ix[chosen]).values)
    return pools


def pool_log(scores: Tensor | None, pools: list[Tensor], k: int, policy: str, segments: int, window: float) -> dict:
    """One segment's log row: its pool's size and class balance, quantile range and score range."""
    counts = [len(p) for p in pools]
    log = {"segment": k, "pool_size": sum(counts), "pool_min_class": min(counts), "pool_max_class": max(counts),
           "class_counts": json.dumps(counts)}
    # without scores (no probe, or policy "none") the segment sees every real sample
    lo, hi = pool_bounds(policy, k, segments, window) if scores is not None else (0.0, 1.0)
    log.update(quantile_lo=lo, quantile_hi=hi)
    if scores is not None:
        chosen = torch.cat(pools)
        log.update(score_min=float(scores[chosen].min()), score_max=float(scores[chosen].max()),
                   score_mean=float(scores[chosen].mean()), score_mean_all=float(scores.mean()))
    return log


def pool_dataset(data: Dataset, pools: list[Tensor]) -> Dataset:
    """``data`` seen through ``pools``: each class's index list replaced by its pool (for initialising from it)."""
    return replace(data, class_index=pools)


def starts_by_difficulty(candidates: list[Tensor], scores: Tensor | None, class_index: list[Tensor], centre: float,
                         need: int, generator: torch.Generator | None = None) -> tuple[list[Tensor], float | None]:
    """Per class, the ``need`` of ``candidates`` (indices of real images) whose score ranks nearest the quantile
    ``centre`` of the class's scores; random ones (seeded) without scores. Also returns the chosen
    images' mean quantile (None without scores), for the segment's log.
    """
    picks, quantiles = [], []
    for cand, ix in zip(candidates, class_index):
        if len(cand) < need:
            raise ValueError(f"{len(cand)} candidate starts left in a class, {need} needed.")
        if scores is None:
            order = torch.randperm(len(cand), generator=generator).to(cand.device)
        else:
            ranked = torch.sort(scores[ix].float()).values
            q = torch.searchsorted(ranked, scores[cand].float().contiguous()).float() / max(len(ix) - 1, 1)
            order = torch.argsort((q - centre).abs(), stable=True)
            quantiles.append(q[order[:need]])
        picks.append(cand[order[:need]])
    return picks, float(torch.cat(quantiles).mean()) if quantiles else None
