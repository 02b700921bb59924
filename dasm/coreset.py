"""Coreset baselines: pick real images per class and use them as the "synthetic" set."""

from __future__ import annotations

import torch
from torch import Tensor

from .data import Dataset


def check_ipc(data: Dataset, ipc: int) -> None:
    """Raise a clear ValueError when ``ipc`` images per class cannot be drawn from ``data``."""
    if not isinstance(ipc, int) or isinstance(ipc, bool) or ipc < 1:
        raise ValueError(f"IPC (images per class) must be a positive integer, got {ipc!r}.")
    counts = data.class_counts()
    smallest = min(counts)
    if ipc > smallest:
        c = counts.index(smallest)
        raise ValueError(f"IPC {ipc} is larger than class {c} ({data.classes[c]!r}) of {data.name}, "
                         f"which has {smallest} training images; the largest IPC here is {smallest}.")


def random_indices(data: Dataset, ipc: int, seed: int = 0) -> Tensor:
    """Indices of ``ipc`` training images per class drawn uniformly without replacement."""
    check_ipc(data, ipc)
    g = torch.Generator().manual_seed(seed)
    picks = [ix[torch.randperm(len(ix), generator=g)[:ipc].to(ix.device)] for ix in data.class_index]
    return torch.cat(picks)
