"""Datasets as whole tensors: a small registry, offline-aware loading, a per-class index.

Every dataset comes back as one :class:`Dataset` holding the train and test splits as
float tensors in [0, 1] (NCHW) with integer labels, the class names and the per-channel
mean/std used to normalise network inputs. Pixels are never stored normalised: synthetic
sets live in the same [0, 1] pixel space, and :meth:`Dataset.normalize` maps both to the
network's input space.

Where the files come from (first hit wins), for ``fashion-mnist`` and ``mnist``:
the data root (``--data-dir``, else ``$DASM_DATA``, else ``data/`` in the project), then the
Debian package folder ``/usr/share/datasets/<name>``, then torchvision's download into the
data root. CIFAR-10/100 and SVHN go through torchvision (download when online).
``digits`` is scikit-learn's bundled 8x8 set and needs no files at all.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import Tensor

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEBIAN_ROOT = Path("/usr/share/datasets")

# Per-channel statistics used by the reference implementations (DC/DSA/DM/IDC), so that
# networks see the inputs they were tuned on. ``digits`` has none published: its own are used.
PUBLISHED_MEAN_STD = {
    "mnist": ((0.1307,), (0.3081,)),
    "fashion-mnist": ((0.2861,), (0.3530,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)),
    "cifar100": ((0.5071, 0.4866, 0.4409), (0.2673, 0.2564, 0.2762)),
    "svhn": ((0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970)),
}

FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


class DatasetNotFoundError(FileNotFoundError):
    """The dataset's files are not on this machine and could not be downloaded."""


@dataclass
class Dataset:
    """One dataset as whole tensors: train/test (and optional validation) splits in [0, 1]."""

    name: str
    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    classes: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    x_val: Tensor | None = None
    y_val: Tensor | None = None
    source: str = ""
    class_index: list[Tensor] = field(default_factory=list, repr=False)
    val_split: tuple[float, int] | None = None   # (fraction, seed) of load_dataset's held-out split

    def __post_init__(self) -> None:
        if not self.class_index:
            self.class_index = class_indices(self.y_train, self.num_classes)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def channels(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def im_size(self) -> tuple[int, int]:
        return int(self.x_train.shape[2]), int(self.x_train.shape[3])

    @property
    def device(self) -> torch.device:
        return self.x_train.device

    def class_counts(self) -> list[int]:
        """Number of training images in each class."""
        return [len(ix) for ix in self.class_index]

    def normalize(self, x: Tensor) -> Tensor:
        """Map [0, 1] pixels to the network's input space ((x - mean) / std per channel)."""
        mean = torch.tensor(self.mean, device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
        return (x - mean) / std

    def to(self, device: str | torch.device) -> "Dataset":
        """A copy with every tensor on ``device``."""
        move = lambda t: None if t is None else t.to(device)  # noqa: E731
        return replace(self, x_train=move(self.x_train), y_train=move(self.y_train),
                       x_test=move(self.x_test), y_test=move(self.y_test),
                       x_val=move(self.x_val), y_val=move(self.y_val),
                       class_index=[ix.to(device) for ix in self.class_index])

    def images_of(self, c: int) -> Tensor:
        """All training images of class ``c``."""
        return self.x_train[self.class_index[c]]

    def sample_class(self, c: int, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` random training images of class ``c`` (all of them, shuffled, if the class is smaller)."""
        ix = self.class_index[c]
        perm = torch.randperm(len(ix), generator=generator)[:n].to(ix.device)
        return self.x_train[ix[perm]]

    def __repr__(self) -> str:
        val = f", val={len(self.y_val)}" if self.y_val is not None else ""
        return (f"Dataset({self.name!r}, train={len(self.y_train)}, test={len(self.y_test)}{val}, "
                f"shape={tuple(self.x_train.shape[1:])}, classes={self.num_classes}, "
                f"device={self.device}, source={self.source!r})")


def class_indices(y: Tensor, num_classes: int) -> list[Tensor]:
    """Indices of the samples of each class, in dataset order."""
    return [torch.nonzero(y == c, as_tuple=True)[0] for c in range(num_classes)]


# ---------------------------------------------------------------------------------------
# Where data lives
# ---------------------------------------------------------------------------------------

def data_root(root: str | os.PathLike | None = None) -> Path:
    """The data folder: ``root`` if given, else ``$DASM_DATA``, else ``data/`` in the project."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get("DASM_DATA")
    return Path(env).expanduser() if env else PROJECT_ROOT / "data"


def _missing(name: str, root: Path, extra: str = "") -> DatasetNotFoundError:
    debian = {"fashion-mnist": "dataset-fashion-mnist", "mnist": "dataset-mnist"}.get(name)
    ways = [f"  1. put the files in {root / name} (or pass --data-dir / set DASM_DATA to a folder holding them);"]
    if debian:
        ways.append(f"  2. install the Debian package: apt-get install -y {debian} "
                    f"(files land in {DEBIAN_ROOT / name});")
    ways.append(f"  {len(ways) + 1}. run once with internet access: torchvision downloads it into {root}.")
    msg = f"Dataset {name!r} is not available on this machine. Get it one of these ways:\n" + "\n".join(ways)
    return DatasetNotFoundError(msg + (f"\n(download failed: {extra})" if extra else ""))


# ---------------------------------------------------------------------------------------
# Loaders: each returns (x_train, y_train, x_test, y_test, classes, source) as CPU tensors
# ---------------------------------------------------------------------------------------

Raw = tuple[Tensor, Tensor, Tensor, Tensor, tuple[str, ...], str]


def _load_digits(root: Path, download: bool) -> Raw:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x = bunch.images.astype(np.float32) / 16.0  # pixel values are 0..16
    y = bunch.target.astype(np.int64)
    # Deterministic stratified 80/20 split: 1,437 train and 360 test images.
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.2, stratify=y, random_state=0)
    to_x = lambda a: torch.from_numpy(np.ascontiguousarray(a)).unsqueeze(1)  # noqa: E731
    return to_x(x_tr), torch.from_numpy(y_tr), to_x(x_te), torch.from_numpy(y_te), \
        tuple(str(i) for i in range(10)), "scikit-learn (bundled)"


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (optionally gzip-compressed) into a numpy array."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path} is not an IDX file of unsigned bytes (bad magic number).")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path} is truncated: expected {int(np.prod(dims))} values, found {data.size}.")
    return data.reshape(dims)


_IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
              "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def _find_idx_folder(folders: list[Path]) -> tuple[Path, list[Path]] | None:
    for folder in folders:
        found = []
        for stem in _IDX_FILES:
            hits = [folder / (stem + ext) for ext in (".gz", "") if (folder / (stem + ext)).is_file()]
            if not hits:
                break
            found.append(hits[0])
        else:
            return folder, found
    return None


def _idx_candidates(name: str, root: Path) -> list[Path]:
    tv = {"fashion-mnist": "FashionMNIST", "mnist": "MNIST"}[name]
    return [root / name, root / name / "raw", root / tv / "raw", DEBIAN_ROOT / name]


def _load_idx_dataset(name: str, root: Path, download: bool, classes: tuple[str, ...]) -> Raw:
    hit = _find_idx_folder(_idx_candidates(name, root))
    if hit is None:
        if not download:
            raise _missing(name, root)
        import torchvision

        cls = {"fashion-mnist": torchvision.datasets.FashionMNIST, "mnist": torchvision.datasets.MNIST}[name]
        try:
            cls(str(root), train=True, download=True)
            cls(str(root), train=False, download=True)
        except Exception as err:  # network errors come in many types; report any of them
            raise _missing(name, root, extra=str(err).splitlines()[0] if str(err) else type(err).__name__) from err
        hit = _find_idx_folder(_idx_candidates(name, root))
        if hit is None:
            raise _missing(name, root)
    folder, (xtr, ytr, xte, yte) = hit
    img = lambda p: torch.from_numpy(read_idx(p).astype(np.float32) / 255.0).unsqueeze(1)  # noqa: E731
    lab = lambda p: torch.from_numpy(read_idx(p).astype(np.int64))  # noqa: E731
    return img(xtr), lab(ytr), img(xte), lab(yte), classes, str(folder)


def _load_fashion(root: Path, download: bool) -> Raw:
    return _load_idx_dataset("fashion-mnist", root, download, FASHION_CLASSES)


def _load_mnist(root: Path, download: bool) -> Raw:
    return _load_idx_dataset("mnist", root, download, tuple(str(i) for i in range(10)))


def _load_torchvision(name: str, root: Path, download: bool) -> Raw:
    import torchvision

    def build(train: bool):
        if name == "svhn":
            return torchvision.datasets.SVHN(str(root), split="train" if train else "test", download=download)
        cls = {"cifar10": torchvision.datasets.CIFAR10, "cifar100": torchvision.datasets.CIFAR100}[name]
        return cls(str(root), train=train, download=download)

    try:
        tr, te = build(True), build(False)
    except Exception as err:
        raise _missing(name, root, extra=str(err).splitlines()[0] if str(err) else type(err).__name__) from err

    def tensors(ds) -> tuple[Tensor, Tensor]:
        if name == "svhn":  # stored NCHW already, labels in .labels
            x, y = np.asarray(ds.data), np.asarray(ds.labels)
        else:
            x, y = np.asarray(ds.data).transpose(0, 3, 1, 2), np.asarray(ds.targets)
        return torch.from_numpy(x.astype(np.float32) / 255.0), torch.from_numpy(y.astype(np.int64))

    classes = tuple(str(c) for c in getattr(tr, "classes", range(10)))
    if name == "svhn":
        classes = tuple(str(i) for i in range(10))
    return (*tensors(tr), *tensors(te), classes, str(root))


@dataclass(frozen=True)
class DatasetSpec:
    """What the registry knows about a dataset before loading it."""

    name: str
    channels: int
    im_size: tuple[int, int]
    num_classes: int
    loader: Callable[[Path, bool], Raw]
    description: str


DATASETS: dict[str, DatasetSpec] = {
    "digits": DatasetSpec("digits", 1, (8, 8), 10, _load_digits,
                          "scikit-learn's bundled 8x8 handwritten digits (1,437 train / 360 test)"),
    "fashion-mnist": DatasetSpec("fashion-mnist", 1, (28, 28), 10, _load_fashion,
                                 "Zalando's Fashion-MNIST, 28x28 grey (60,000 / 10,000)"),
    "mnist": DatasetSpec("mnist", 1, (28, 28), 10, _load_mnist, "MNIST digits, 28x28 grey (60,000 / 10,000)"),
    "cifar10": DatasetSpec("cifar10", 3, (32, 32), 10, lambda r, d: _load_torchvision("cifar10", r, d),
                           "CIFAR-10, 32x32 colour (50,000 / 10,000)"),
    "cifar100": DatasetSpec("cifar100", 3, (32, 32), 100, lambda r, d: _load_torchvision("cifar100", r, d),
                            "CIFAR-100, 32x32 colour (50,000 / 10,000)"),
    "svhn": DatasetSpec("svhn", 3, (32, 32), 10, lambda r, d: _load_torchvision("svhn", r, d),
                        "Street View House Numbers, 32x32 colour (73,257 / 26,032)"),
}

_ALIASES = {"fashion_mnist": "fashion-mnist", "fashionmnist": "fashion-mnist", "fmnist": "fashion-mnist",
            "cifar-10": "cifar10", "cifar-100": "cifar100"}


def canonical_name(name: str) -> str:
    """The registry's name for ``name`` (case and common spellings forgiven)."""
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in DATASETS:
        raise ValueError(f"Unknown dataset {name!r}. Known datasets: {', '.join(DATASETS)}. "
                         "Run `dasm datasets` to see which are available here.")
    return key


def list_datasets() -> list[str]:
    """Names of every registered dataset."""
    return list(DATASETS)


def is_available(name: str, root: str | os.PathLike | None = None) -> tuple[bool, str]:
    """Whether ``name`` can be loaded without a download, and from where (or what is missing)."""
    name = canonical_name(name)
    r = data_root(root)
    if name == "digits":
        return True, "bundled with scikit-learn"
    if name in ("fashion-mnist", "mnist"):
        hit = _find_idx_folder(_idx_candidates(name, r))
        return (True, str(hit[0])) if hit else (False, "not found; needs download or apt package")
    marker = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python", "svhn": "train_32x32.mat"}[name]
    path = r / marker
    return (True, str(path)) if path.exists() else (False, "not found; needs download")


# ---------------------------------------------------------------------------------------
# The public entry point
# ---------------------------------------------------------------------------------------

def stratified_split(y: Tensor, fraction: float, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Split indices of ``y`` per class into (kept, held_out), holding out ``fraction`` of each class."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {fraction}.")
    g = torch.Generator().manual_seed(seed)
    keep, held = [], []
    for c in torch.unique(y).tolist():
        ix = torch.nonzero(y == c, as_tuple=True)[0]
        ix = ix[torch.randperm(len(ix), generator=g)]
        n_val = max(1, int(round(fraction * len(ix))))
        if n_val >= len(ix):
            raise ValueError(f"Class {c} has {len(ix)} samples: too few to hold out {fraction:.0%} for validation.")
        held.append(ix[:n_val])
        keep.append(ix[n_val:])
    return torch.sort(torch.cat(keep)).values, torch.sort(torch.cat(held)).values


def load_dataset(name: str, root: str | os.PathLike | None = None, device: str | torch.device = "cpu",
                 val_fraction: float = 0.0, seed: int = 0, download: bool = True) -> Dataset:
    """Load ``name`` as whole tensors on ``device``.

    ``val_fraction`` > 0 carves a stratified validation split (seeded by ``seed``) out of the
    training data; choose anything during distillation on it, never on the test split.
    Raises :class:`DatasetNotFoundError` naming the ways to get the data when it is missing.
    """
    spec = DATASETS[canonical_name(name)]
    x_tr, y_tr, x_te, y_te, classes, source = spec.loader(data_root(root), download)
    if spec.name in PUBLISHED_MEAN_STD:
        mean, std = PUBLISHED_MEAN_STD[spec.name]
    else:
        mean = tuple(x_tr.mean(dim=(0, 2, 3)).tolist())
        std = tuple(x_tr.std(dim=(0, 2, 3)).tolist())
    x_val = y_val = None
    if val_fraction:
        keep, held = stratified_split(y_tr, val_fraction, seed)
        x_val, y_val = x_tr[held], y_tr[held]
        x_tr, y_tr = x_tr[keep], y_tr[keep]
    data = Dataset(spec.name, x_tr.contiguous(), y_tr, x_te.contiguous(), y_te, classes,
                   tuple(float(m) for m in mean), tuple(float(s) for s in std), x_val, y_val, source,
                   val_split=(float(val_fraction), int(seed)) if val_fraction else None)
    return data.to(device) if torch.device(device) != torch.device("cpu") else data
