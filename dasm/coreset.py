"""Coreset baselines: pick real images per class and use them as the "synthetic" set.

Every selector returns global indices into ``data.x_train``, grouped class by class (class 0's
``ipc`` indices first, then class 1's, ...), in selection order within a class, so
``data.x_train[idx]`` and ``data.y_train[idx]`` are a ready-made IPC set. Herding and k-center
work in a feature space: by default that of a ConvNet trained briefly on the real data, as in
the reference DC code; any (N, D) tensor with one row per training sample works.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor, nn

from .data import Dataset
from .difficulty import reference_network
from .files import load_or_compute
from .methods import method_names
from .train import Recipe

CORESET_METHODS = method_names("coreset")
SCORE_KEEPS = ("hardest", "easiest", "middle")
_SELECT_METHODS = CORESET_METHODS + ("score",)


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


# ---------------------------------------------------------------------------------------
# Feature space
# ---------------------------------------------------------------------------------------

@torch.no_grad()
def embed_dataset(net: nn.Module, x: Tensor, normalize: Callable[[Tensor], Tensor] | None = None,
                  batch_size: int = 1024) -> Tensor:
    """Features ``net.embed`` gives every row of ``x`` (eval mode, no grad, batched), shape (N, feature_dim).

    ``x`` must already be on the network's device; the network's train/eval mode is restored.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size!r}.")
    was_training = net.training
    net.eval()
    out = [net.embed(normalize(xb) if normalize else xb) for xb in x.split(batch_size)]
    net.train(was_training)
    return torch.cat(out) if out else torch.empty(0, getattr(net, "feature_dim", 0), device=x.device)


def feature_network(data: Dataset, arch: str = "convnet", epochs: int = 10, seed: int = 0,
                    progress: bool = False, **net_kwargs) -> nn.Module:
    """A fresh ``arch`` (seeded) trained for ``epochs`` on all real training data with the evaluation recipe.

    No augmentation; returned in eval mode on ``data.device``. Its embedding is where herding and
    k-center select (``net_kwargs`` go to :func:`dasm.nets.get_network`, e.g. ``width=16``). It is
    :func:`dasm.difficulty.reference_network` without augmentation.
    """
    return reference_network(data, arch, seed=seed, progress=progress,
                             recipe=Recipe(epochs=epochs, augment="none"), desc="features", **net_kwargs)


def cached_features(data: Dataset, folder: str | os.PathLike, *, arch: str = "convnet", epochs: int = 10,
                    width: int = 128, seed: int = 0, progress: bool = False) -> Tensor:
    """The embedding of ``data.x_train`` under :func:`feature_network`, kept in ``folder``.

    One file per dataset, split, network, seed and device, so every IPC and both selectors of a
    seed train the network once; a file whose rows do not match the data is recomputed.
    """
    split = "" if data.val_split is None else f"-val{data.val_split[0]:g}s{data.val_split[1]}"
    path = Path(folder) / f"{data.name}{split}-{arch}-w{width}-ep{epochs}-seed{seed}-{data.device.type}.pt"

    def compute() -> Tensor:
        net = feature_network(data, arch, epochs=epochs, seed=seed, progress=progress, width=width)
        return embed_dataset(net, data.x_train, data.normalize)

    return load_or_compute(path, compute, data.device, valid=lambda f: f.shape[0] == len(data.x_train))


# ---------------------------------------------------------------------------------------
# Selectors
# ---------------------------------------------------------------------------------------

def _check_rows(data: Dataset, t: Tensor, what: str, hint: str) -> None:
    if len(t) != len(data.y_train):
        raise ValueError(f"{what} has {len(t)} rows but {data.name} has {len(data.y_train)} training "
                         f"samples: expected {len(data.y_train)}, got {len(t)}. {hint}")


def _check_features(data: Dataset, features: Tensor) -> Tensor:
    """``features`` as a float (N, D) tensor, after checking it has one finite row per training sample."""
    features = features.unsqueeze(1) if features.dim() == 1 else features.flatten(1)
    _check_rows(data, features, "features",
                "Pass one row per training sample, e.g. embed_dataset(net, data.x_train, data.normalize).")
    if not features.is_floating_point():
        features = features.float()
    if not torch.isfinite(features).all():
        raise ValueError("features contain NaN or infinite values; check the network that produced them.")
    return features


def _per_class(data: Dataset, pick: Callable[[Tensor], Tensor], on: torch.device) -> Tensor:
    """Apply ``pick`` (class rows -> local positions) to each class and map back to global indices."""
    out = []
    for ix in data.class_index:
        local = pick(ix.to(on))
        out.append(ix[local.to(ix.device)])
    return torch.cat(out)


def herding_indices(data: Dataset, ipc: int, features: Tensor) -> Tensor:
    """Per class, greedy herding (Welling 2009): each step adds the unpicked sample that brings the
    running mean of the picked features closest (Euclidean) to the class mean.

    The first pick is the sample nearest the class mean; ties go to the lower index.
    """
    check_ipc(data, ipc)
    features = _check_features(data, features)

    def pick(ix: Tensor) -> Tensor:
        f = features[ix]
        mu = f.mean(0)
        total = torch.zeros_like(mu)
        taken = torch.zeros(len(f), dtype=torch.bool, device=f.device)
        order = []
        for k in range(1, ipc + 1):
            gap = torch.linalg.vector_norm((total + f) / k - mu, dim=1)  # mean if each sample were added
            j = int(gap.masked_fill(taken, float("inf")).argmin())
            order.append(j)
            taken[j] = True
            total = total + f[j]
        return torch.tensor(order, device=f.device)

    return _per_class(data, pick, features.device)


def kcenter_indices(data: Dataset, ipc: int, features: Tensor, seed: int = 0) -> Tensor:
    """Per class, greedy k-center (farthest-point): start at the sample nearest the class mean, then
    repeatedly add the sample farthest from all picked centres (Euclidean; ties to the lower index).

    The start rule makes the result deterministic: ``seed`` is accepted for a uniform interface
    and does not change the picks.
    """
    check_ipc(data, ipc)
    features = _check_features(data, features)

    def pick(ix: Tensor) -> Tensor:
        f = features[ix]
        first = int(torch.linalg.vector_norm(f - f.mean(0), dim=1).argmin())
        order = [first]
        taken = torch.zeros(len(f), dtype=torch.bool, device=f.device)
        taken[first] = True
        nearest = torch.linalg.vector_norm(f - f[first], dim=1)  # distance to the closest centre
        for _ in range(ipc - 1):
            j = int(nearest.masked_fill(taken, -1.0).argmax())
            order.append(j)
            taken[j] = True
            nearest = torch.minimum(nearest, torch.linalg.vector_norm(f - f[j], dim=1))
        return torch.tensor(order, device=f.device)

    return _per_class(data, pick, features.device)


def score_indices(data: Dataset, ipc: int, scores: Tensor, keep: str = "hardest") -> Tensor:
    """Per class, the ``ipc`` samples with the highest (``hardest``, in descending order) or lowest
    (``easiest``, ascending) score, or the ``middle`` window of the ascending order centred on the median.

    ``scores`` holds one value per training sample (e.g. a loss); ties keep dataset order.
    """
    check_ipc(data, ipc)
    if keep not in SCORE_KEEPS:
        raise ValueError(f"Unknown keep={keep!r}; choose one of {', '.join(SCORE_KEEPS)}.")
    if scores.dim() != 1:
        raise ValueError(f"scores must be 1-D (one value per training sample), got shape {tuple(scores.shape)}.")
    _check_rows(data, scores, "scores", "Pass one score per training sample (e.g. a per-sample loss).")
    if torch.isnan(scores).any():
        raise ValueError(f"scores contain {int(torch.isnan(scores).sum())} NaN values; "
                         "fix or drop them (e.g. torch.nan_to_num) before selecting.")

    def pick(ix: Tensor) -> Tensor:
        order = torch.sort(scores[ix], descending=keep == "hardest", stable=True).indices
        start = (len(ix) - ipc) // 2 if keep == "middle" else 0
        return order[start:start + ipc]

    return _per_class(data, pick, scores.device)


def select_coreset(data: Dataset, method: str, ipc: int, seed: int = 0, features: Tensor | None = None,
                   scores: Tensor | None = None, keep: str = "hardest") -> Tensor:
    """Indices of an ``ipc``-per-class coreset chosen by ``method`` (``random``, ``herding``, ``kcenter``
    or ``score``), grouped class by class.

    Herding and k-center without ``features`` train :func:`feature_network` (seeded by ``seed``) and
    use its embedding; ``score`` needs ``scores`` and keeps the ``keep`` end of them.
    """
    check_ipc(data, ipc)
    name = method.strip().lower() if isinstance(method, str) else method
    if name not in _SELECT_METHODS:
        raise ValueError(f"Unknown coreset method {method!r}; choose one of {', '.join(_SELECT_METHODS)}.")
    if name == "random":
        return random_indices(data, ipc, seed)
    if name == "score":
        if scores is None:
            raise ValueError("Coreset method 'score' needs `scores` (one value per training sample, "
                             "e.g. a per-sample loss from dasm.difficulty).")
        return score_indices(data, ipc, scores, keep)
    if features is None:
        features = embed_dataset(feature_network(data, seed=seed), data.x_train, data.normalize)
    if name == "herding":
        return herding_indices(data, ipc, features)
    return kcenter_indices(data, ipc, features, seed)
