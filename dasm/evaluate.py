"""The evaluation protocol: train fresh networks on a set, report last-epoch test accuracy.

Every result row names the protocol that produced it (architecture, epochs, batch,
optimiser, lr schedule, augmentation): comparing numbers made under different protocols
is the field's most common mistake, and the ``protocol`` column makes it visible.
Accuracies are the LAST epoch's, never the best: nothing here looks at the test split
to choose anything.
"""

from __future__ import annotations

import hashlib
import os
import platform
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable

import pandas as pd
import torch
from torch import Tensor

from . import __version__
from .augment import DSA
from .data import Dataset
from .device import seed_everything
from .files import locked, save_atomic
from .nets import get_network
from .train import Recipe, predict, train_model

RESULT_COLUMNS = ["dataset", "method", "ipc", "seed", "arch", "metric", "value", "protocol", "device"]


@dataclass(frozen=True)
class Protocol:
    """How a set is evaluated: which network, trained with which recipe."""

    arch: str = "convnet"
    recipe: Recipe = field(default_factory=Recipe)
    net_kwargs: tuple[tuple[str, object], ...] = ()

    @property
    def id(self) -> str:
        """Stable identifier stored in every result row, e.g. ``convnet/ep300-bs256-...-dc-dsa``."""
        kw = "".join(f"-{k}{v}" for k, v in self.net_kwargs)
        return f"{self.arch}{kw}/{self.recipe.describe()}"

    def with_arch(self, arch: str) -> "Protocol":
        """The same recipe on another architecture."""
        return replace(self, arch=arch)


# Named protocols of the reference implementations. The epoch counts are the published
# ones; use ``replace(PROTOCOLS["dc"].recipe, epochs=...)`` for quick runs.
PROTOCOLS: dict[str, Protocol] = {
    "dc": Protocol(recipe=Recipe(epochs=1000, schedule="dc")),     # DC/DSA/DM: lr x0.1 at half
    "idc": Protocol(recipe=Recipe(epochs=1000, schedule="idc")),   # IDC: lr x0.2 at 2/3 and 5/6
}

# Full-data reference training per dataset (`dasm train-real`), sized for a 2-core CPU.
# Their accuracies are the `full` rows of docs/results.md (benchmarks/results/accuracy_*_cpu.csv).
REAL_RECIPES: dict[str, Recipe] = {
    "digits": Recipe(epochs=100),                                        # 97.8%, ~30 s
    "fashion-mnist": Recipe(epochs=5, batch_size=128, augment="none"),
    "mnist": Recipe(epochs=5, batch_size=128, augment="none"),
    "cifar10": Recipe(epochs=30),
    "cifar100": Recipe(epochs=30),
    "svhn": Recipe(epochs=15),
}


def make_augment(data: Dataset, recipe: Recipe) -> DSA | None:
    """The per-sample augmentation the recipe asks for on this dataset (None for ``none``)."""
    if recipe.augment in ("none", ""):
        return None
    if recipe.augment == "dsa":
        return DSA.for_dataset(data.name)
    return DSA(strategy=recipe.augment)


def train_and_test(data: Dataset, x: Tensor, y: Tensor, protocol: Protocol, seed: int = 0, *,
                   checkpoint: str | os.PathLike | None = None, progress: bool = True,
                   desc: str | None = None, keep: str | os.PathLike | None = None,
                   keep_train: bool = False, keep_net: bool = False,
                   keep_info: dict | None = None) -> dict[str, float]:
    """Train a fresh ``protocol.arch`` (seeded) on ``(x, y)`` and measure it on the test split.

    Returns ``test_acc`` (percent, last epoch), ``train_acc``, ``val_acc`` when the dataset
    has a validation split, and ``seconds`` of training (summed over epochs, so a run resumed from
    ``checkpoint`` counts the epochs it did before the interruption too). With ``keep``, the
    network's per-sample predictions are saved there with ``keep_info`` (see :func:`save_predictions`;
    with ``keep_train`` also on the training set; with ``keep_net`` the network's weights too).
    """
    if x.shape[1:] != data.x_train.shape[1:]:
        raise ValueError(f"Images have shape {tuple(x.shape[1:])} but {data.name} expects "
                         f"{tuple(data.x_train.shape[1:])}.")
    g = seed_everything(seed)
    net = get_network(protocol.arch, data.channels, data.num_classes, data.im_size,
                      **dict(protocol.net_kwargs)).to(data.device)
    logs = train_model(net, x.to(data.device), y.to(data.device), protocol.recipe,
                       normalize=data.normalize, augment=make_augment(data, protocol.recipe),
                       generator=g, checkpoint=checkpoint, progress=progress,
                       desc=desc or f"{protocol.arch} seed {seed}")
    logits = {"test": predict(net, data.x_test, data.normalize)}
    if data.x_val is not None:
        logits["val"] = predict(net, data.x_val, data.normalize)
    if keep_train:
        logits["train"] = predict(net, data.x_train, data.normalize)
    out = {"test_acc": _percent_right(logits["test"], data.y_test),
           "train_acc": logs[-1]["train_acc"],
           "seconds": sum(log["seconds"] for log in logs)}
    if data.x_val is not None:
        out["val_acc"] = _percent_right(logits["val"], data.y_val)
    if keep is not None:
        save_predictions(keep, logits, protocol=protocol.id, seed=seed, dataset=data.name,
                         val_split=data.val_split, net=net.state_dict() if keep_net else None,
                         environment=environment(), **(keep_info or {}))
    return out


def _percent_right(logits: Tensor, y: Tensor) -> float:
    return 100.0 * (logits.argmax(1) == y).float().mean().item()


# ---------------------------------------------------------------------------------------
# Per-sample predictions: every evaluation keeps its network's logits, so diagnoses that look
# at which samples a network gets right (accuracy by difficulty) never train it again.
# ---------------------------------------------------------------------------------------

def predictions_file(folder: str | os.PathLike, method: str, ipc: int, protocol: Protocol | str, seed: int) -> Path:
    """Where the predictions of one evaluation live: ``<folder>/<method>-ipc<ipc>-<arch>-seed<seed>-<hash>.pt``,
    the hash naming the whole protocol (recipe and network)."""
    pid = protocol.id if isinstance(protocol, Protocol) else protocol
    arch = pid.split("/")[0]
    return Path(folder) / f"{method}-ipc{ipc}-{arch}-seed{seed}-{hashlib.sha1(pid.encode()).hexdigest()[:8]}.pt"


def save_predictions(path: str | os.PathLike, logits: dict[str, Tensor], **info: object) -> Path:
    """Save per-split logits (float16, on the CPU: 10,000 test images x 10 classes is 200 kB) with ``info``."""
    state = {"logits": {k: v.detach().to("cpu", torch.float16) for k, v in logits.items()},
             **{k: v for k, v in info.items() if v is not None}}
    return save_atomic(state, path)


def load_predictions(path: str | os.PathLike) -> dict:
    """What :func:`save_predictions` wrote: ``logits`` per split (float32) and the run's ``protocol``, ``seed``, ..."""
    state = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(state, dict) or "logits" not in state:
        raise ValueError(f"{path} holds no saved predictions (expected a file written by dasm.evaluate).")
    state["logits"] = {k: v.float() for k, v in state["logits"].items()}
    return state


def evaluate_set(data: Dataset, x: Tensor, y: Tensor, *, method: str, ipc: int,
                 protocol: Protocol | None = None, seeds: Iterable[int] = (0, 1, 2),
                 archs: Iterable[str] | None = None, progress: bool = True,
                 checkpoint_dir: str | os.PathLike | None = None,
                 predictions_dir: str | os.PathLike | None = None, keep_train: bool = False, keep_net: bool = False,
                 **extra: object) -> pd.DataFrame:
    """Evaluate a (synthetic or coreset) set under ``protocol`` for every seed and architecture.

    Returns a tidy table, one row per (arch, seed, metric), with the columns of
    :data:`RESULT_COLUMNS` plus ``extra`` (e.g. ``segments=5``) as constant columns. With
    ``predictions_dir``, each network's per-sample logits are kept there (:func:`predictions_file`; on the
    training set too with ``keep_train``, and its weights with ``keep_net``).
    """
    protocol = protocol or PROTOCOLS["dc"]
    seeds = list(seeds)
    if not seeds:
        raise ValueError("Give at least one seed.")
    rows = []
    for arch in list(archs or [protocol.arch]):
        proto = protocol.with_arch(arch)
        for seed in seeds:
            ckpt = None
            if checkpoint_dir is not None:
                Path(checkpoint_dir).mkdir(parents=True, exist_ok=True)
                ckpt = Path(checkpoint_dir) / f"{method}-ipc{ipc}-{arch}-seed{seed}.ckpt"
            keep = predictions_file(predictions_dir, method, ipc, proto, seed) if predictions_dir is not None else None
            res = train_and_test(data, x, y, proto, seed, checkpoint=ckpt, progress=progress,
                                 desc=f"{method} ipc{ipc} {arch} s{seed}", keep=keep, keep_train=keep_train,
                                 keep_net=keep_net,
                                 keep_info={"method": method, "ipc": ipc, "arch": arch})
            for metric, value in res.items():
                rows.append({"dataset": data.name, "method": method, "ipc": ipc, "seed": seed,
                             "arch": arch, "metric": metric, "value": value, "protocol": proto.id,
                             "device": data.device.type, **extra})
            if ckpt is not None and ckpt.exists():
                ckpt.unlink()  # the result row now holds what the checkpoint protected
    return pd.DataFrame(rows)


def environment() -> dict[str, str]:
    """Versions and machine facts kept with every network's predictions: a seeded CPU run repeats bit for bit
    only at the same torch version and thread count."""
    return {"dasm": __version__, "torch": torch.__version__, "python": platform.python_version(),
            "machine": platform.machine(), "threads": str(torch.get_num_threads())}


def append_results(df: pd.DataFrame, path: str | os.PathLike) -> pd.DataFrame:
    """Append ``df`` to the CSV table at ``path`` (created if missing); return the whole table."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with locked(path):   # another process appending to the same table waits instead of losing rows
        table = pd.concat([pd.read_csv(path), df], ignore_index=True) if path.exists() else df
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        table.to_csv(tmp, index=False)
        os.replace(tmp, path)
    return table


def summarize(df: pd.DataFrame, metric: str = "test_acc") -> pd.DataFrame:
    """Mean, std and count of ``metric`` over seeds, one row per dataset/method/ipc/arch/protocol."""
    sel = df[df["metric"] == metric]
    keys = [k for k in ("dataset", "method", "ipc", "arch", "protocol") if k in sel.columns]
    out = sel.groupby(keys, sort=False)["value"].agg(["mean", "std", "count"]).reset_index()
    out["std"] = out["std"].fillna(0.0)
    return out
