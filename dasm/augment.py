"""Differentiable Siamese Augmentation (DSA).

A re-implementation of the augmentation of Zhao & Bilen, "Dataset Condensation
with Differentiable Siamese Augmentation" (ICML 2021), matching the reference
``ParamDiffAug`` defaults, without its global-seed mechanism.

Images reach the augmentation already normalized, shaped ``(N, C, H, W)``.
Every operation is differentiable with respect to the pixels, so distillation
can backpropagate through it to the synthetic images.

Randomness is explicit: :meth:`DSA.sample` draws an :class:`AugParams` (on the
CPU, from a ``torch.Generator`` or torch's default one) and :meth:`DSA.apply`
applies it on whatever device ``x`` lives on. A draw with ``n=1`` is shared by
every sample of every batch it is applied to; that is the "Siamese" part used
in gradient matching, where the real and the synthetic batch must receive the
identical transform (:meth:`DSA.siamese`). Training a network on the distilled
data uses per-sample draws (:meth:`DSA.__call__`).

Families (``strategy`` is their names joined by ``_``)::

    color   brightness x + (u - 0.5) * brightness, then saturation
            (x - mean_c) * (u * saturation) + mean_c, then contrast
            (x - mean_chw) * (u + contrast) + mean_chw
    crop    integer translation in [-s, s] per axis, s = int(side * crop + 0.5),
            zero fill
    cutout  zero a square of int(side * cutout + 0.5) pixels at a random centre
    flip    horizontal flip with probability prob_flip
    scale   independent x/y scaling in [1 / scale, scale] (affine grid)
    rotate  rotation by [-rotate, rotate] degrees (affine grid)

Mode ``"single"`` (the reference's ``'S'``) picks one family uniformly per
draw; mode ``"multiple"`` (``'M'``) applies every family in order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["DEFAULT_STRATEGY", "NO_FLIP_DATASETS", "FAMILIES", "MODES", "AugParams", "DSA"]

DEFAULT_STRATEGY = "color_crop_cutout_flip_scale_rotate"
NO_FLIP_DATASETS = frozenset({"digits", "mnist", "svhn"})

#: Valid family names, in the reference's order.
FAMILIES: tuple[str, ...] = ("color", "crop", "cutout", "flip", "scale", "rotate")
#: Valid modes; the reference's one-letter names are accepted as aliases.
MODES: dict[str, str] = {"single": "single", "multiple": "multiple", "S": "single", "M": "multiple"}
_IDENTITY_STRATEGIES = frozenset({"", "none", "None"})
_DEFAULTS = dict(
    brightness=1.0, saturation=2.0, contrast=0.5, crop=0.125, cutout=0.5,
    scale=1.2, rotate=15.0, prob_flip=0.5,
)


@dataclass(frozen=True, eq=False)
class AugParams:
    """Everything one draw decided.

    Attributes:
        families: the families applied, in order (empty for the identity).
        n: number of draws; 1 means one draw shared by every sample of any batch.
        size: the ``(H, W)`` the draw was made for (crop and cutout depend on it).
        ops: the primitive operations in the order they are applied, each
            ``(name, tensor)`` with a CPU tensor whose first dimension is ``n``:

            ``brightness`` (n,) additive shift; ``saturation`` (n,) factor;
            ``contrast`` (n,) factor; ``crop`` (n, 2) long row/column shift
            (``out[i, j] = x[i + dy, j + dx]``, zero outside); ``cutout`` (n, 4)
            long ``(top, left, bottom, right)`` half-open box, possibly reaching
            outside the image; ``flip`` (n,) bool; ``scale`` (n, 2) ``(sx, sy)``;
            ``rotate`` (n,) angle in radians.
    """

    families: tuple[str, ...]
    n: int
    size: tuple[int, int]
    ops: tuple[tuple[str, Tensor], ...]

    def get(self, name: str) -> Tensor | None:
        """The tensor of the first primitive op called ``name``, or None."""
        for op, value in self.ops:
            if op == name:
                return value
        return None


class DSA:
    """Differentiable Siamese Augmentation with the reference DSA defaults.

    Args:
        strategy: family names joined by ``_``; ``"none"`` or ``""`` is the identity.
        mode: ``"single"`` (one random family per draw) or ``"multiple"`` (all, in order).
        brightness, saturation, contrast: the colour ratios.
        crop: maximal translation as a fraction of the side.
        cutout: side of the cut-out square as a fraction of the side.
        scale: scale factors lie in ``[1 / scale, scale]``.
        rotate: maximal rotation in degrees.
        prob_flip: probability of a horizontal flip.
    """

    def __init__(
        self,
        strategy: str = DEFAULT_STRATEGY,
        mode: str = "single",
        brightness: float = 1.0,
        saturation: float = 2.0,
        contrast: float = 0.5,
        crop: float = 0.125,
        cutout: float = 0.5,
        scale: float = 1.2,
        rotate: float = 15.0,
        prob_flip: float = 0.5,
    ) -> None:
        if strategy in _IDENTITY_STRATEGIES:
            families: tuple[str, ...] = ()
        else:
            families = tuple(strategy.split("_"))
            unknown = [f for f in families if f not in FAMILIES]
            if unknown:
                raise ValueError(
                    f"unknown augmentation famil{'y' if len(unknown) == 1 else 'ies'} "
                    f"{', '.join(map(repr, unknown))} in strategy {strategy!r}; valid families: "
                    f"{', '.join(FAMILIES)} (joined by '_'), or 'none' for the identity"
                )
        if mode not in MODES:
            raise ValueError(f"unknown augmentation mode {mode!r}; valid modes: 'single' ('S'), 'multiple' ('M')")
        if not 0.0 <= prob_flip <= 1.0:
            raise ValueError(f"prob_flip must lie in [0, 1], got {prob_flip}")
        if crop < 0 or cutout < 0:
            raise ValueError(f"crop and cutout must be >= 0, got crop={crop}, cutout={cutout}")
        if scale <= 0:
            raise ValueError(f"scale must be > 0, got {scale}")
        self.families = families
        self.mode = MODES[mode]
        self.brightness = float(brightness)
        self.saturation = float(saturation)
        self.contrast = float(contrast)
        self.crop = float(crop)
        self.cutout = float(cutout)
        self.scale = float(scale)
        self.rotate = float(rotate)
        self.prob_flip = float(prob_flip)

    @classmethod
    def for_dataset(cls, dataset: str, **kwargs) -> "DSA":
        """The DSA for ``dataset``: as ``DSA(**kwargs)``, minus ``flip`` for digit data sets."""
        strategy = kwargs.pop("strategy", DEFAULT_STRATEGY)
        if dataset.lower() in NO_FLIP_DATASETS and strategy not in _IDENTITY_STRATEGIES:
            strategy = "_".join(f for f in strategy.split("_") if f != "flip") or "none"
        return cls(strategy=strategy, **kwargs)

    # ------------------------------------------------------------------ identity
    @property
    def strategy(self) -> str:
        """The strategy string (``"none"`` for the identity)."""
        return "_".join(self.families) or "none"

    @property
    def is_identity(self) -> bool:
        """True when no family is enabled."""
        return not self.families

    def describe(self) -> str:
        """Short stable protocol id, e.g. ``dsa:color_crop_cutout_scale_rotate/single``.

        Hyper-parameters that differ from the reference defaults are appended in
        parentheses, so different protocols never share an id.
        """
        if self.is_identity:
            return "dsa:none"
        changed = [f"{k}={getattr(self, k):g}" for k, v in _DEFAULTS.items() if getattr(self, k) != v]
        suffix = f"({','.join(changed)})" if changed else ""
        return f"dsa:{self.strategy}/{self.mode}{suffix}"

    def __repr__(self) -> str:
        return self.describe()

    # ------------------------------------------------------------------ drawing
    def sample(self, n: int, size: Sequence[int], generator: torch.Generator | None = None) -> AugParams:
        """Draw parameters for ``n`` samples of images of spatial ``size`` ``(H, W)``.

        Numbers are drawn on the CPU from ``generator`` (a CPU generator; torch's
        default one when None). ``n=1`` gives one draw that :meth:`apply`
        broadcasts to any batch size.
        """
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        h, w = (int(s) for s in size)
        if not self.families:
            return AugParams(families=(), n=n, size=(h, w), ops=())
        if self.mode == "single":
            k = int(torch.randint(len(self.families), (1,), generator=generator).item())
            families = (self.families[k],)
        else:
            families = self.families
        ops: list[tuple[str, Tensor]] = []
        for family in families:
            ops.extend(self._draw(family, n, h, w, generator))
        return AugParams(families=families, n=n, size=(h, w), ops=tuple(ops))

    def _draw(self, family: str, n: int, h: int, w: int, g: torch.Generator | None) -> list[tuple[str, Tensor]]:
        def rand(*shape: int) -> Tensor:
            return torch.rand(*shape, generator=g)

        if family == "color":
            return [
                ("brightness", (rand(n) - 0.5) * self.brightness),
                ("saturation", rand(n) * self.saturation),
                ("contrast", rand(n) + self.contrast),
            ]
        if family == "crop":
            sh, sw = int(h * self.crop + 0.5), int(w * self.crop + 0.5)
            dy = torch.randint(-sh, sh + 1, (n,), generator=g)
            dx = torch.randint(-sw, sw + 1, (n,), generator=g)
            return [("crop", torch.stack([dy, dx], dim=1))]
        if family == "cutout":
            ch, cw = int(h * self.cutout + 0.5), int(w * self.cutout + 0.5)
            # Reference centres: [0, side) for odd squares, [0, side] for even ones.
            cy = torch.randint(0, h + (1 - ch % 2), (n,), generator=g)
            cx = torch.randint(0, w + (1 - cw % 2), (n,), generator=g)
            top, left = cy - ch // 2, cx - cw // 2
            return [("cutout", torch.stack([top, left, top + ch, left + cw], dim=1))]
        if family == "flip":
            return [("flip", rand(n) < self.prob_flip)]
        if family == "scale":
            lo = 1.0 / self.scale
            sx = rand(n) * (self.scale - lo) + lo
            sy = rand(n) * (self.scale - lo) + lo
            return [("scale", torch.stack([sx, sy], dim=1))]
        if family == "rotate":
            return [("rotate", (rand(n) - 0.5) * 2 * self.rotate * math.pi / 180)]
        raise AssertionError(family)  # unreachable: families are validated in __init__

    # ------------------------------------------------------------------ applying
    def apply(self, x: Tensor, params: AugParams) -> Tensor:
        """Apply a draw to ``x`` of shape ``(N, C, H, W)``, differentiably in ``x``.

        ``params.n`` must be 1 (shared draw) or ``N``; ``params.size`` must be ``(H, W)``.
        """
        if x.dim() != 4:
            raise ValueError(f"expected images shaped (N, C, H, W), got {tuple(x.shape)}")
        if params.n not in (1, x.shape[0]):
            raise ValueError(f"params drawn for n={params.n} cannot be applied to a batch of {x.shape[0]}")
        if tuple(x.shape[-2:]) != params.size:
            raise ValueError(f"params drawn for size {params.size}, images are {tuple(x.shape[-2:])}")
        for name, value in params.ops:
            x = _OPS[name](x, value.to(x.device))
        return x

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Augment ``x`` with independent draws per sample (one family per call in single mode)."""
        if not self.families:
            return x
        return self.apply(x, self.sample(x.shape[0], x.shape[-2:], generator))

    def siamese(self, *xs: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, ...]:
        """Apply one shared draw to every tensor (e.g. the real and the synthetic batch)."""
        if not xs or not self.families:
            return tuple(xs)
        sizes = {tuple(x.shape[-2:]) for x in xs}
        if len(sizes) != 1:
            raise ValueError(f"siamese augmentation needs equal image sizes, got {sorted(sizes)}")
        params = self.sample(1, xs[0].shape[-2:], generator)
        return tuple(self.apply(x, params) for x in xs)


# ---------------------------------------------------------------------- primitive ops
# Each takes x (N, C, H, W) and a parameter tensor with first dimension 1 or N on x's device.


def _per_sample(v: Tensor, x: Tensor) -> Tensor:
    return v.to(x.dtype).view(-1, 1, 1, 1)


def _brightness(x: Tensor, shift: Tensor) -> Tensor:
    return x + _per_sample(shift, x)


def _saturation(x: Tensor, factor: Tensor) -> Tensor:
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * _per_sample(factor, x) + mean


def _contrast(x: Tensor, factor: Tensor) -> Tensor:
    mean = x.mean(dim=[1, 2, 3], keepdim=True)
    return (x - mean) * _per_sample(factor, x) + mean


def _crop(x: Tensor, shift: Tensor) -> Tensor:
    n, c, h, w = x.shape
    shift = shift.expand(n, 2)
    # One zero pixel of padding; indices past the border are clamped onto it.
    xp = F.pad(x, [1, 1, 1, 1])
    rows = (torch.arange(h, device=x.device) + shift[:, :1] + 1).clamp(0, h + 1)  # (N, H)
    cols = (torch.arange(w, device=x.device) + shift[:, 1:] + 1).clamp(0, w + 1)  # (N, W)
    xp = xp.gather(2, rows.view(n, 1, h, 1).expand(n, c, h, w + 2))
    return xp.gather(3, cols.view(n, 1, 1, w).expand(n, c, h, w))


def _cutout(x: Tensor, box: Tensor) -> Tensor:
    h, w = x.shape[-2:]
    r = torch.arange(h, device=x.device)
    c = torch.arange(w, device=x.device)
    in_rows = (r >= box[:, 0:1]) & (r < box[:, 2:3])  # (n, H)
    in_cols = (c >= box[:, 1:2]) & (c < box[:, 3:4])  # (n, W)
    keep = ~(in_rows[:, :, None] & in_cols[:, None, :])
    return x * keep.unsqueeze(1).to(x.dtype)


def _flip(x: Tensor, flip: Tensor) -> Tensor:
    return torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)


def _affine(x: Tensor, theta: Tensor) -> Tensor:
    theta = theta.to(x.dtype).expand(x.shape[0], 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=True)
    return F.grid_sample(x, grid, align_corners=True)


def _scale(x: Tensor, s: Tensor) -> Tensor:
    zero = torch.zeros_like(s[:, 0])
    theta = torch.stack(
        [torch.stack([s[:, 0], zero, zero], dim=1), torch.stack([zero, s[:, 1], zero], dim=1)], dim=1
    )
    return _affine(x, theta)


def _rotate(x: Tensor, angle: Tensor) -> Tensor:
    cos, sin, zero = angle.cos(), angle.sin(), torch.zeros_like(angle)
    theta = torch.stack([torch.stack([cos, -sin, zero], dim=1), torch.stack([sin, cos, zero], dim=1)], dim=1)
    return _affine(x, theta)


_OPS = {
    "brightness": _brightness,
    "saturation": _saturation,
    "contrast": _contrast,
    "crop": _crop,
    "cutout": _cutout,
    "flip": _flip,
    "scale": _scale,
    "rotate": _rotate,
}
