"""SyntheticSet: learnable pixels and labels, multi-formation decoding, init, save/load.

Pixels are stored in [0, 1] pixel space (not normalised), like the real data, so a set
can be viewed, saved as PNG and evaluated with any normalisation. Values may leave [0, 1]
while they are being learned; views clamp.

Multi-formation (IDC): with factor f, every stored image (side s) holds f x f tiles of
side ceil(s / f); decoding cuts the tiles and upsamples each back to side s (bilinear), so
one stored image trains as f^2 images and the labels repeat f^2 times. f = 1 is the plain
storage of DC/DSA/DM.

Layout: images are grouped by segment, and within a segment by class (``n`` per class).
``segments`` holds each segment's ``(start, end)`` range of stored images, so DASM can
freeze earlier segments while a later one learns.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from . import __version__
from .files import save_atomic

FORMAT = "dasm.synthetic/1"
INITS = ("noise", "real", "mix", "modes")


class SyntheticSetError(ValueError):
    """A synthetic-set file or tensor is not what it claims to be."""


# ---------------------------------------------------------------------------------------
# Multi-formation: pack f^2 images into one, decode one into f^2
# ---------------------------------------------------------------------------------------

def decode(images: Tensor, factor: int) -> Tensor:
    """Decode stored images (N, C, s, s) into (N * f^2, C, s, s): tile t of image i lands at i*f^2 + t."""
    if factor == 1:
        return images
    n, c, h, w = images.shape
    th, tw = math.ceil(h / factor), math.ceil(w / factor)
    tiles = [images[:, :, i * th:(i + 1) * th, j * tw:(j + 1) * tw]
             for i in range(factor) for j in range(factor)]
    tiles = [F.pad(t, (0, tw - t.shape[-1], 0, th - t.shape[-2])) for t in tiles]  # ragged edge
    stacked = torch.stack(tiles, dim=1).reshape(n * factor * factor, c, th, tw)
    return F.interpolate(stacked, size=(h, w), mode="bilinear", align_corners=False)


def pack(images: Tensor, factor: int) -> Tensor:
    """Shrink groups of f^2 consecutive images (M, C, s, s) into M / f^2 stored images (the inverse layout of decode)."""
    if factor == 1:
        return images
    m, c, h, w = images.shape
    k = factor * factor
    if m % k:
        raise ValueError(f"pack needs a multiple of factor^2 = {k} images, got {m}.")
    th, tw = math.ceil(h / factor), math.ceil(w / factor)
    small = F.interpolate(images, size=(th, tw), mode="bilinear", antialias=True, align_corners=False)
    small = small.reshape(m // k, factor, factor, c, th, tw)
    grid = small.permute(0, 3, 1, 4, 2, 5).reshape(m // k, c, factor * th, factor * tw)
    return grid[:, :, :h, :w].contiguous()


# ---------------------------------------------------------------------------------------
# The set
# ---------------------------------------------------------------------------------------

@dataclass
class SyntheticSet:
    """Stored images (N, C, s, s) in pixel space, one label each, a multi-formation factor and segments."""

    images: Tensor
    labels: Tensor
    num_classes: int
    factor: int = 1
    segments: list[tuple[int, int]] = field(default_factory=list)
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.segments:
            self.segments = [(0, len(self.images))]
        self.validate()

    # -- facts -------------------------------------------------------------------------
    @property
    def ipc(self) -> int:
        """Stored images per class (the storage budget; each decodes into factor^2 images)."""
        return len(self.labels) // self.num_classes

    @property
    def im_size(self) -> tuple[int, int]:
        return int(self.images.shape[2]), int(self.images.shape[3])

    @property
    def device(self) -> torch.device:
        return self.images.device

    def segment_ipcs(self) -> list[int]:
        """Stored images per class in each segment."""
        return [(b - a) // self.num_classes for a, b in self.segments]

    def validate(self) -> None:
        """Raise :class:`SyntheticSetError` naming what is inconsistent."""
        x, y = self.images, self.labels
        if x.dim() != 4:
            raise SyntheticSetError(f"images must be (N, C, H, W), got shape {tuple(x.shape)}.")
        if y.dim() != 1 or len(y) != len(x):
            raise SyntheticSetError(f"labels must be one per image: {len(x)} images, labels {tuple(y.shape)}.")
        if not isinstance(self.factor, int) or self.factor < 1 or self.factor > min(x.shape[2:]):
            raise SyntheticSetError(f"factor must be an integer in 1..{min(x.shape[2:])}, got {self.factor!r}.")
        if len(y) and (int(y.min()) < 0 or int(y.max()) >= self.num_classes):
            raise SyntheticSetError(f"labels must lie in 0..{self.num_classes - 1}.")
        counts = torch.bincount(y.cpu(), minlength=self.num_classes)
        if len(y) and not (counts == counts[0]).all():
            raise SyntheticSetError(f"every class needs the same number of images, got {counts.tolist()}.")
        ends = [0] + [b for _, b in self.segments]
        if any(a != ends[i] for i, (a, _) in enumerate(self.segments)) or ends[-1] != len(x):
            raise SyntheticSetError(f"segments {self.segments} must tile 0..{len(x)} without gaps.")
        if not torch.isfinite(x).all():
            raise SyntheticSetError("images contain NaN or inf.")

    # -- views -------------------------------------------------------------------------
    def decoded(self, images: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """The training view: decoded images and their (repeated) labels."""
        x = self.images if images is None else images
        return decode(x, self.factor), self.labels.repeat_interleave(self.factor ** 2)

    def segment(self, k: int) -> slice:
        """Slice of the stored images of segment ``k``."""
        a, b = self.segments[k]
        return slice(a, b)

    def class_rows(self, c: int, upto_segment: int | None = None) -> Tensor:
        """Stored-image indices of class ``c`` (optionally only in segments 0..upto_segment)."""
        end = len(self.labels) if upto_segment is None else self.segments[upto_segment][1]
        return torch.nonzero(self.labels[:end] == c, as_tuple=True)[0]

    def to(self, device: str | torch.device) -> "SyntheticSet":
        """A copy on ``device``."""
        return SyntheticSet(self.images.detach().to(device), self.labels.to(device), self.num_classes,
                            self.factor, list(self.segments), dict(self.meta))

    def add_segment(self, images: Tensor, labels: Tensor) -> "SyntheticSet":
        """A new set with one more segment appended (images grouped by class, equal per class)."""
        return SyntheticSet(torch.cat([self.images.detach(), images.to(self.device)]),
                            torch.cat([self.labels, labels.to(self.device)]), self.num_classes, self.factor,
                            self.segments + [(len(self.labels), len(self.labels) + len(labels))],
                            dict(self.meta))

    # -- files -------------------------------------------------------------------------
    def save(self, path: str | os.PathLike, png: bool = True) -> Path:
        """Write one ``.pt`` file (and a PNG grid next to it unless ``png=False``); its meta records the dasm and
        torch versions and the thread count that made the set (a seeded CPU run repeats only at the same ones)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {"format": FORMAT, "images": self.images.detach().cpu(), "labels": self.labels.cpu(),
                 "num_classes": self.num_classes, "factor": self.factor, "segments": self.segments,
                 "meta": {"dasm_version": __version__, "torch_version": torch.__version__,
                          "threads": torch.get_num_threads(), **self.meta}}
        save_atomic(state, path)
        if png:
            save_grid(self, path.with_suffix(".png"))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | torch.device = "cpu") -> "SyntheticSet":
        """Read a set written by :meth:`save`; explains what is wrong with a bad file."""
        path = Path(path)
        if not path.is_file():
            raise SyntheticSetError(f"{path} does not exist (give the .pt file or the run folder holding synthetic.pt).")
        try:
            state = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as err:
            raise SyntheticSetError(f"{path} is not a readable torch file ({type(err).__name__}: {err}). "
                                    "It may be truncated; re-run the distillation or use its checkpoint.") from err
        if not isinstance(state, dict) or state.get("format") != FORMAT:
            raise SyntheticSetError(f"{path} is not a dasm synthetic set (format {FORMAT!r}). Published sets "
                                    "(DC/DSA/DM res_*.pt, MTT images_best.pt, IDC data.pt) load with "
                                    "dasm.synthetic.import_published().")
        missing = {"images", "labels", "num_classes", "factor", "segments", "meta"} - set(state)
        if missing:
            raise SyntheticSetError(f"{path} lacks {sorted(missing)}.")
        try:
            s = cls(state["images"].float(), state["labels"].long(), int(state["num_classes"]),
                    int(state["factor"]), [tuple(t) for t in state["segments"]], dict(state["meta"]))
        except SyntheticSetError as err:
            raise SyntheticSetError(f"{path}: {err}") from None
        return s.to(device)


def check_matches(syn: SyntheticSet, data) -> None:
    """Raise if ``syn`` cannot be evaluated on ``data`` (classes, channels, image size, dataset name)."""
    name = syn.meta.get("dataset")
    if name is not None and name != data.name:
        raise SyntheticSetError(f"this synthetic set was distilled from {name!r}, not {data.name!r}.")
    if syn.num_classes != data.num_classes or tuple(syn.images.shape[1:]) != tuple(data.x_train.shape[1:]):
        raise SyntheticSetError(f"set of {syn.num_classes} classes x {tuple(syn.images.shape[1:])} does not fit "
                                f"{data.name} ({data.num_classes} classes x {tuple(data.x_train.shape[1:])}).")
    made_on, held_out = syn.meta.get("val_split"), getattr(data, "val_split", None)
    made_on = tuple(made_on) if made_on is not None else None
    if held_out is not None and made_on != held_out:
        seen = ("all of the training set" if made_on is None else
                f"a training split holding out {made_on[0]:.0%} (split seed {made_on[1]})")
        raise SyntheticSetError(f"this set was distilled from {seen}, so the validation split "
                                f"({held_out[0]:.0%}, seed {held_out[1]}) is not held out from it. Load the "
                                "dataset with the set's own split (`dasm evaluate` does), or without one.")


def mark_split(syn: SyntheticSet, data) -> None:
    """Record in ``syn.meta`` the validation split ``data`` holds out, so evaluation can reload the same split."""
    if getattr(data, "val_split", None) is not None:
        syn.meta["val_split"] = list(data.val_split)


# ---------------------------------------------------------------------------------------
# Initialisation
# ---------------------------------------------------------------------------------------

def _class_batch_labels(num_classes: int, n: int, device: torch.device) -> Tensor:
    return torch.arange(num_classes, device=device).repeat_interleave(n)


def initial_images(data, ipc: int, factor: int = 1, init: str = "real", seed: int = 0,
                   features: Tensor | None = None, covered: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Starting pixels and labels for ``ipc`` stored images per class, grouped by class.

    ``noise``: Gaussian in the network's input space (mean + std * N(0, 1));
    ``real``: random real images of the class (with factor > 1 each is shrunk into every tile
    slot, i.e. the same as ``mix``); ``mix``: f^2 random real images shrunk into one (IDC);
    ``modes``: k-means with ipc*f^2 centres per class in ``features`` (a trained network's
    embedding of ``data.x_train``), each centre replaced by its nearest real image, so the set
    starts diverse (``covered``: see :func:`initial_indices`). The real images used are
    :func:`initial_indices`.
    """
    if init not in INITS:
        raise ValueError(f"Unknown init {init!r}; choose one of {', '.join(INITS)}.")
    if init == "noise":
        from .coreset import check_ipc  # local: coreset imports nothing from here, keep it that way

        check_ipc(data, ipc)
        g = torch.Generator().manual_seed(seed)
        shape = (data.num_classes * ipc, data.channels, *data.im_size)
        z = torch.randn(shape, generator=g).to(data.device)
        mean = torch.tensor(data.mean, device=data.device).view(1, -1, 1, 1)
        std = torch.tensor(data.std, device=data.device).view(1, -1, 1, 1)
        return z * std + mean, _class_batch_labels(data.num_classes, ipc, data.device)
    return images_at(data, initial_indices(data, ipc, factor, init, seed, features, covered), ipc, factor)


def images_at(data, indices: Tensor, ipc: int, factor: int = 1) -> tuple[Tensor, Tensor]:
    """Starting pixels and labels of ``ipc`` stored images per class made from the real images at ``indices``
    (grouped by class, ``ipc * factor^2`` a class; with factor > 1 each f^2 consecutive ones share an image)."""
    labels = _class_batch_labels(data.num_classes, ipc, data.device)
    return pack(data.x_train[indices], factor).clone(), labels


def initial_indices(data, ipc: int, factor: int = 1, init: str = "real", seed: int = 0,
                    features: Tensor | None = None, covered: Tensor | None = None) -> Tensor:
    """Indices into ``data.x_train`` of the real images :func:`initial_images` starts from (class by
    class, ipc * f^2 each, drawn from ``data.class_index``); ``init`` must not be ``noise``.

    ``covered`` (``modes`` only): indices of real images a set already starts from; they are kept
    as fixed k-means centres of their class, so the new starts go where those leave the class
    uncovered instead of next to them.
    """
    from .coreset import check_ipc  # local: coreset imports nothing from here, keep it that way

    if init not in INITS or init == "noise":
        raise ValueError(f"init {init!r} starts from no real images; choose one of "
                         f"{', '.join(i for i in INITS if i != 'noise')}.")
    check_ipc(data, ipc)
    need = ipc * factor * factor
    g = torch.Generator().manual_seed(seed)
    if need > min(data.class_counts()):
        raise ValueError(f"init {init!r} with IPC {ipc} and factor {factor} needs {need} real images per class, "
                         f"but the smallest class has {min(data.class_counts())}; use init='noise' or a "
                         "smaller factor.")
    picks = []
    for c, ix in enumerate(data.class_index):
        if init == "modes":
            if features is None or len(features) != len(data.y_train):
                raise ValueError("init='modes' needs features of every training image "
                                 "(e.g. dasm.coreset.embed_dataset(trained_net, data.x_train, data.normalize)).")
            fixed = None
            if covered is not None and len(covered):
                covered = covered.to(data.y_train.device)
                fixed = features[covered[data.y_train[covered] == c]].float()
            picks.append(ix[_kmeans_nearest(features[ix].float(), need, g, fixed=fixed)])
        else:
            picks.append(ix[torch.randperm(len(ix), generator=g)[:need].to(ix.device)])
    return torch.cat(picks)


def _kmeans_nearest(feats: Tensor, k: int, g: torch.Generator, iters: int = 20,
                    fixed: Tensor | None = None) -> Tensor:
    """Indices (into ``feats``) of the points nearest each of ``k`` k-means centres (distinct, seeded).

    ``fixed``: centres that take part in every assignment but never move (points already
    represented); only the ``k`` free centres are returned, so they settle where ``fixed`` leaves
    mass uncovered. They start by k-means++ seeding away from ``fixed`` (from random points, a free
    centre inside a covered region keeps it while a fixed one takes a far region's points). Without
    ``fixed`` the centres start at random points.
    """
    n = len(feats)
    fixed = feats.new_zeros((0, feats.shape[1])) if fixed is None else fixed.to(feats)
    if len(fixed):
        chosen_rows = []
        d2 = torch.cdist(feats, fixed).min(1).values.pow(2)
        for _ in range(k):
            w = d2.cpu().double() + 1e-12   # never all zero
            i = int(torch.multinomial(w, 1, generator=g))
            chosen_rows.append(i)
            d2 = torch.minimum(d2, (feats - feats[i]).pow(2).sum(1))
        centres = feats[torch.tensor(chosen_rows, device=feats.device)].clone()
    else:
        centres = feats[torch.randperm(n, generator=g)[:k].to(feats.device)].clone()
    for _ in range(iters):
        assign = torch.cdist(feats, torch.cat([centres, fixed])).argmin(1)
        for j in range(k):
            members = feats[assign == j]
            if len(members):
                centres[j] = members.mean(0)
    dist = torch.cdist(centres, feats)
    chosen: list[int] = []
    for j in range(k):  # nearest real sample not yet taken, so starts are distinct
        order = dist[j].argsort()
        pick = next(int(i) for i in order.tolist() if int(i) not in chosen)
        chosen.append(pick)
    return torch.tensor(chosen, device=feats.device)


def new_synthetic_set(data, ipc: int, factor: int = 1, init: str = "real", seed: int = 0,
                      features: Tensor | None = None, start: tuple[Tensor, Tensor] | None = None,
                      **meta: object) -> SyntheticSet:
    """A one-segment set initialised with :func:`initial_images` (or from ``start``, pixels and labels
    already made), tagged with ``data``'s name."""
    x, y = start if start is not None else initial_images(data, ipc, factor, init, seed, features)
    return SyntheticSet(x, y, data.num_classes, factor, meta={"dataset": data.name, "ipc": ipc, "init": init,
                                                               "seed": seed, "mean": data.mean, "std": data.std,
                                                               **meta})


# ---------------------------------------------------------------------------------------
# Pictures
# ---------------------------------------------------------------------------------------

def class_grid(images: Tensor, labels: Tensor, num_classes: int) -> Tensor:
    """A (C, H, W) picture in [0, 1]: one row per class, that class's images left to right, 1-pixel white gaps."""
    import torchvision

    order = torch.argsort(labels.cpu(), stable=True)
    per_row = max(len(labels) // max(num_classes, 1), 1)
    return torchvision.utils.make_grid(images.detach().cpu()[order].clamp(0, 1), nrow=per_row, padding=1,
                                       pad_value=1.0)


def save_grid(syn: SyntheticSet, path: str | os.PathLike, decoded: bool = False) -> Path:
    """A PNG grid: one row per class, stored images (or decoded ones) left to right."""
    import torchvision

    x, y = syn.decoded() if decoded else (syn.images.detach(), syn.labels)
    grid = class_grid(x, y, syn.num_classes)
    path = Path(path)
    torchvision.utils.save_image(grid, path)
    return path
