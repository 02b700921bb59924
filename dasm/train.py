"""One training loop for real data and synthetic sets, plus accuracy on whole tensors.

The data is a pair of tensors already on the device (pixels in [0, 1]); each step takes a
random mini-batch by index, normalises it, applies DSA per sample and takes an SGD step.
There is no DataLoader: at these sizes the whole set fits on the device and indexing is
the fastest way to batch it. Soft labels (rows of class probabilities) work as well as
hard ones, for distillers that learn labels.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from .files import save_atomic

SCHEDULES = ("dc", "idc", "constant", "cosine")


class TrainingDivergedError(FloatingPointError):
    """The training loss became NaN or infinite."""


@dataclass(frozen=True)
class Recipe:
    """Hyperparameters of one training run: the field's evaluation recipe by default.

    ``schedule``: ``dc`` multiplies the lr by 0.1 at half the epochs (DC/DSA/DM);
    ``idc`` by 0.2 at 2/3 and again at 5/6 (IDC); ``constant``; ``cosine`` to zero.
    ``augment``: ``dsa`` (the dataset's default DSA strategy), ``none``, or an explicit
    DSA strategy string such as ``color_crop_cutout``.
    """

    epochs: int = 300
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch_size: int = 256
    schedule: str = "dc"
    augment: str = "dsa"

    def __post_init__(self) -> None:
        if not isinstance(self.epochs, int) or self.epochs < 1:
            raise ValueError(f"epochs must be a positive integer, got {self.epochs!r}.")
        if not self.batch_size >= 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size!r}.")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a positive number, got {self.lr!r}.")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"Unknown lr schedule {self.schedule!r}; choose one of {', '.join(SCHEDULES)}.")

    def lr_factor(self, epoch: int) -> float:
        """Multiplier of the base lr during ``epoch`` (0-based)."""
        e, n = epoch, self.epochs
        if self.schedule == "dc":
            return 0.1 if e >= n // 2 else 1.0
        if self.schedule == "idc":
            return 0.2 ** ((e >= 2 * n // 3) + (e >= 5 * n // 6))
        if self.schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * e / n))
        return 1.0

    def describe(self) -> str:
        """A short stable identifier, e.g. ``ep300-bs256-sgd0.01m0.9wd0.0005-dc-dsa``."""
        return (f"ep{self.epochs}-bs{self.batch_size}-sgd{self.lr:g}m{self.momentum:g}"
                f"wd{self.weight_decay:g}-{self.schedule}-{self.augment}")


def _loss(logits: Tensor, y: Tensor) -> Tensor:
    return F.cross_entropy(logits, y)  # hard (int) or soft (float rows) labels alike


@torch.no_grad()
def predict(net: nn.Module, x: Tensor, normalize: Callable[[Tensor], Tensor] | None = None,
            batch_size: int = 1024) -> Tensor:
    """Logits of ``net`` on every row of ``x`` (in eval mode, batched)."""
    was_training = net.training
    net.eval()
    out = []
    for i in range(0, len(x), batch_size):
        xb = x[i:i + batch_size]
        out.append(net(normalize(xb) if normalize else xb))
    net.train(was_training)
    return torch.cat(out) if out else torch.empty(0)


def accuracy(net: nn.Module, x: Tensor, y: Tensor, normalize: Callable[[Tensor], Tensor] | None = None,
             batch_size: int = 1024) -> float:
    """Top-1 accuracy of ``net`` on ``(x, y)`` in percent."""
    if len(y) == 0:
        raise ValueError("accuracy() needs at least one sample.")
    pred = predict(net, x, normalize, batch_size).argmax(1)
    target = y.argmax(1) if y.dim() == 2 else y
    return 100.0 * (pred == target).float().mean().item()


def train_model(net: nn.Module, x: Tensor, y: Tensor, recipe: Recipe, *,
                normalize: Callable[[Tensor], Tensor] | None = None,
                augment: Callable[..., Tensor] | None = None,
                generator: torch.Generator | None = None,
                checkpoint: str | os.PathLike | None = None,
                progress: bool = True, desc: str = "train",
                callback: Callable[[dict], None] | None = None) -> list[dict]:
    """Train ``net`` in place on ``(x, y)`` with SGD following ``recipe``; return per-epoch logs.

    ``augment(x, generator=...)`` is applied per sample after ``normalize``. With
    ``checkpoint`` set, the state is saved after every epoch and a rerun resumes from it.
    Raises :class:`TrainingDivergedError` if the loss turns NaN/inf.
    """
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} samples but y has {len(y)} labels.")
    if len(x) == 0:
        raise ValueError("Cannot train on an empty set.")
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    opt = torch.optim.SGD(net.parameters(), lr=recipe.lr, momentum=recipe.momentum,
                          weight_decay=recipe.weight_decay)
    logs: list[dict] = []
    start_epoch = 0
    ckpt = Path(checkpoint) if checkpoint is not None else None
    if ckpt is not None and ckpt.exists():
        state = torch.load(ckpt, map_location=x.device, weights_only=False)
        if state.get("recipe") != asdict(recipe):
            raise ValueError(f"Checkpoint {ckpt} was written by a different recipe "
                             f"({state.get('recipe')}); delete it or use another output folder.")
        net.load_state_dict(state["net"])
        opt.load_state_dict(state["opt"])
        g.set_state(state["generator"])
        start_epoch, logs = state["epoch"], state["logs"]

    n, bs = len(x), min(recipe.batch_size, len(x))
    steps = math.ceil(n / bs)
    net.train()
    bar = tqdm(total=recipe.epochs * steps, initial=start_epoch * steps, desc=desc,
               disable=not progress, leave=False, unit="step")
    for epoch in range(start_epoch, recipe.epochs):
        for group in opt.param_groups:
            group["lr"] = recipe.lr * recipe.lr_factor(epoch)
        t0 = time.perf_counter()
        perm = torch.randperm(n, generator=g).to(x.device)
        total_loss, correct = 0.0, 0
        for i in range(0, n, bs):
            idx = perm[i:i + bs]
            xb, yb = x[idx], y[idx]
            if normalize is not None:
                xb = normalize(xb)
            if augment is not None:
                xb = augment(xb, generator=g)
            logits = net(xb)
            loss = _loss(logits, yb)
            if not torch.isfinite(loss):
                raise TrainingDivergedError(
                    f"Training loss became {loss.item()} at epoch {epoch}: lower the learning rate "
                    f"(now {recipe.lr * recipe.lr_factor(epoch):g}) or check the inputs for NaN.")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total_loss += loss.item() * len(idx)
            target = yb.argmax(1) if yb.dim() == 2 else yb
            correct += (logits.argmax(1) == target).sum().item()
            bar.update(1)
        log = {"epoch": epoch, "loss": total_loss / n, "train_acc": 100.0 * correct / n,
               "lr": opt.param_groups[0]["lr"], "seconds": time.perf_counter() - t0}
        logs.append(log)
        bar.set_postfix(epoch=epoch + 1, loss=f"{log['loss']:.3f}", acc=f"{log['train_acc']:.1f}")
        if callback is not None:
            callback(log)
        if ckpt is not None:
            save_atomic({"net": net.state_dict(), "opt": opt.state_dict(), "generator": g.get_state(),
                         "epoch": epoch + 1, "logs": logs, "recipe": asdict(recipe)}, ckpt)
    bar.close()
    return logs
