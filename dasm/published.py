"""Import synthetic sets released by other codebases, to evaluate them under this project's protocol.

Supported formats (all store images normalised with the dataset's mean/std, which are undone
here so the set lives in [0, 1] pixel space like every other SyntheticSet):

- ``dc``: DC / DSA / DM ``res_<method>_<dataset>_<model>_<ipc>ipc.pt`` = ``{"data": [[images, labels], ...]}``
  (one pair per experiment; pick one with ``experiment``);
- ``mtt``: MTT ``images_best.pt`` with ``labels_best.pt`` beside it (ZCA-whitened sets cannot be undone);
- ``idc``: IDC ``data.pt`` = ``[images, labels]`` of multi-formation images (give ``factor``, IDC's default 2).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import Tensor

from .data import DATASETS, PUBLISHED_MEAN_STD, canonical_name
from .synthetic import SyntheticSet, SyntheticSetError

FORMATS = ("dc", "mtt", "idc")
EXPECTED = {"dc": "a DC/DSA/DM res_*.pt file ({'data': [[images, labels], ...]})",
            "mtt": "an MTT images_best.pt (an image tensor, labels_best.pt beside it)",
            "idc": "an IDC data.pt ([images, labels])"}


def _guess_format(path: Path) -> str:
    if path.name.startswith("res_"):
        return "dc"
    if path.name.startswith("images_"):
        return "mtt"
    if path.name == "data.pt":
        return "idc"
    raise SyntheticSetError(f"cannot tell the format of {path.name}; pass kind= one of {', '.join(FORMATS)}.")


def _as_tensor(obj: object, what: str, path: Path) -> Tensor:
    if not isinstance(obj, Tensor):
        raise SyntheticSetError(f"{path}: expected a tensor of {what}, found {type(obj).__name__}.")
    return obj


def _images_and_labels(state: object, path: Path, kind: str, experiment: int) -> tuple[object, object]:
    """The images and labels a published file of format ``kind`` holds."""
    if kind == "dc":
        if not isinstance(state, dict) or "data" not in state:
            raise SyntheticSetError(f"{path} has no 'data' entry: it is not {EXPECTED[kind]}.")
        runs = state["data"]
        if not 0 <= experiment < len(runs):
            raise SyntheticSetError(f"{path} holds {len(runs)} experiments; experiment={experiment} is out of range.")
        return runs[experiment][0], runs[experiment][1]
    if kind == "mtt":
        label_path = path.with_name(path.name.replace("images_", "labels_"))
        if not label_path.is_file():
            raise SyntheticSetError(f"MTT images need their labels file {label_path.name} beside them.")
        return state, torch.load(label_path, map_location="cpu", weights_only=False)
    if not isinstance(state, (list, tuple)) or len(state) != 2:
        raise SyntheticSetError(f"{path} is not {EXPECTED[kind]}.")
    return state[0], state[1]


def import_published(path: str | os.PathLike, dataset: str, kind: str | None = None, factor: int = 1,
                     experiment: int = 0, mean: tuple[float, ...] | None = None,
                     std: tuple[float, ...] | None = None) -> SyntheticSet:
    """Load a published synthetic set as a :class:`SyntheticSet` in pixel space.

    ``mean``/``std`` default to the reference statistics of ``dataset``; give them when the
    releasing code normalised differently.
    """
    path = Path(path)
    name = canonical_name(dataset)
    kind = kind or _guess_format(path)
    if kind not in FORMATS:
        raise SyntheticSetError(f"unknown format {kind!r}; choose one of {', '.join(FORMATS)}.")
    if not path.is_file():
        raise SyntheticSetError(f"{path} does not exist.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
        images, labels = _images_and_labels(state, path, kind, experiment)
    except SyntheticSetError:
        raise
    except Exception as err:   # unpickling errors, a foreign object's shape: one line naming what was expected
        raise SyntheticSetError(f"{path} is not {EXPECTED[kind]} ({type(err).__name__}: {err}).") from None
    images = _as_tensor(images, "images", path).float()
    labels = _as_tensor(labels, "labels", path)
    if labels.dim() == 2:  # soft labels: keep the arg-max class
        labels = labels.argmax(1)
    labels = labels.long()
    m, s = PUBLISHED_MEAN_STD.get(name, (None, None))
    m, s = mean or m, std or s
    if m is None or s is None:
        raise SyntheticSetError(f"no reference mean/std for {name}; pass mean= and std=.")
    if images.shape[1] != len(m):
        raise SyntheticSetError(f"{path}: images have {images.shape[1]} channels, {name} has {len(m)}.")
    images = images * torch.tensor(s).view(1, -1, 1, 1) + torch.tensor(m).view(1, -1, 1, 1)
    order = torch.argsort(labels, stable=True)
    return SyntheticSet(images[order], labels[order], DATASETS[name].num_classes, factor,
                        meta={"dataset": name, "method": f"imported-{kind}", "source": str(path)})


# ConvNet test accuracy as published (1000-epoch evaluation, full distillation budgets on a GPU), at IPC 1/10/50
# (DESIGN.md section 4); what the benchmark tables print beside their own numbers.
PUBLISHED_ACCURACY: dict[tuple[str, str], tuple[float, float, float]] = {
    ("fashion-mnist", "dc"): (70.5, 82.3, 83.6),
    ("fashion-mnist", "dsa"): (70.6, 84.6, 88.7),
    ("fashion-mnist", "idc"): (81.0, 86.0, 86.2),
}
