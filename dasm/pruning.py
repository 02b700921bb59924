"""The static-pruning ablation: drop the easiest real samples of each class, then distill once.

Difficulty comes from one network trained on all the real data (its loss on each sample, or
the forgetting events while it trains), not from probes on the synthetic set as in DASM: the
test of whether removing easy samples alone explains what sequential matching gains.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import pandas as pd
import torch
from torch import Tensor

from .data import Dataset
from .difficulty import forgetting_scores, reference_network, score_samples
from .distill import DistillConfig, distill_segment, save_run, save_starts
from .pools import pool_dataset
from .synthetic import SyntheticSet, new_synthetic_set

SCORES_FILE = "prune_scores.pt"


def pruning_scores(data: Dataset, score: str, epochs: int, width: int, seed: int, *,
                   out: str | os.PathLike | None = None, progress: bool = True) -> Tensor:
    """Each training sample's ``score`` (``loss`` under, or ``forgetting`` while training, a seeded full-data
    ConvNet of ``width`` for ``epochs``), kept as ``out/prune_scores.pt`` so a resumed run trains no second network."""
    key = {"score": score, "epochs": epochs, "width": width, "seed": seed, "n": len(data.y_train)}
    path = None if out is None else Path(out) / SCORES_FILE
    if path is not None and path.exists():
        kept = torch.load(path, map_location="cpu", weights_only=True)
        if kept["key"] == key:
            return kept["scores"]
    if score == "forgetting":
        scores, _ = forgetting_scores(data.x_train, data.y_train, normalize=data.normalize, epochs=epochs, seed=seed,
                                      progress=progress, width=width)
    else:
        ref = reference_network(data, epochs=epochs, seed=seed, progress=progress, width=width)
        scores = score_samples(score, ref, data.x_train, data.y_train, data.normalize)
    scores = scores.cpu()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"key": key, "scores": scores}, path)
    return scores


def static_prune(data: Dataset, base: DistillConfig, *, drop: float = 0.3, score: str = "loss",
                 reference_epochs: int = 20, reference_width: int = 128, out: str | os.PathLike | None = None,
                 progress: bool = True, callback: Callable[[dict], None] | None = None,
                 should_stop: Callable[[], bool] | None = None, features: Tensor | None = None,
                 stamp: dict | None = None) -> tuple[SyntheticSet, pd.DataFrame, list[Tensor]]:
    """The static-pruning ablation: drop the easiest ``drop`` of each class by a full-data network's score, distill once.

    ``score``: ``loss`` (under the reference network: a ConvNet of ``reference_width`` trained for
    ``reference_epochs``) or ``forgetting`` (while training it). ``callback``/``should_stop`` as in
    :func:`~dasm.distill.distill_segment`; ``features``: the embedding ``init="modes"`` needs; ``stamp``: what
    ``out/config.json`` records (default: ``base`` and the pruning choices). Returns the set, its history and
    the kept pools.
    """
    if not 0.0 <= drop < 1.0:
        raise ValueError(f"drop must be a fraction in [0, 1), got {drop!r}.")
    scores = pruning_scores(data, score, reference_epochs, reference_width, base.seed, out=out, progress=progress)
    scores = scores.to(data.y_train.device)
    pools = []
    for ix in data.class_index:
        order = torch.argsort(scores[ix].float(), stable=True)
        cut = min(int(round(drop * len(ix))), len(ix) - base.ipc * base.factor ** 2)
        pools.append(torch.sort(ix[order[max(cut, 0):]]).values)
    pool_data = pool_dataset(data, pools)
    syn = new_synthetic_set(pool_data, base.ipc, base.factor, base.init, base.seed, features,
                            method="static-prune",
                            base_method=base.method,
                            config=asdict(base), prune={"drop": drop, "score": score})
    save_starts(out, syn)
    syn, hist = distill_segment(data, syn, base, pools=pools, out=out, progress=progress, callback=callback,
                                should_stop=should_stop)
    if out is not None:
        stamp = stamp or {**asdict(base), "prune": {"drop": drop, "score": score, "reference_epochs": reference_epochs,
                                                      "reference_width": reference_width}}
        save_run(out, syn, hist, stamp, finished=len(hist) >= base.iterations)
    return syn, hist, pools
