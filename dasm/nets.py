"""The standard networks of dataset distillation (DC/DSA/DM/IDC style), built by name.

Every network exposes the same small interface so that distillation code can treat them alike:

    net.embed(x)       -> (N, net.feature_dim) features right before the last linear layer
    net.classifier     -> that last nn.Linear
    net(x)             -> net.classifier(net.embed(x)), the logits

Use `get_network(name, channels, num_classes, im_size, **kwargs)`; `list_networks()` gives the names.
Layer shapes follow the reference `networks.py` of DC/DSA/DM (e.g. 1x28x28 inputs are padded to 32x32
by the first conv), and every net also runs on tiny 1x8x8 inputs.
"""

from __future__ import annotations

import functools
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

NORMS = ("instance", "batch", "layer", "none")
ACTS = ("relu", "sigmoid", "leakyrelu")
POOLS = ("avg", "max", "none")


# ----------------------------------------------------------------------------- helpers

def _check_choice(what: str, value: str, choices: tuple[str, ...]) -> str:
    """Return `value` lower-cased if it is one of `choices`, else raise ValueError listing them."""
    v = value.lower() if isinstance(value, str) else value
    if v not in choices:
        raise ValueError(f"unknown {what} {value!r}; valid choices: {', '.join(choices)}")
    return v


def _check_positive_int(what: str, value: int) -> int:
    """Return `value` if it is a positive int (bools rejected), else raise ValueError."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{what} must be a positive int, got {value!r}")
    return value


def _check_dims(channels: int, num_classes: int, im_size: int | tuple[int, int]) -> tuple[int, int]:
    """Validate the common constructor arguments and return `im_size` as an (H, W) pair."""
    _check_positive_int("channels", channels)
    _check_positive_int("num_classes", num_classes)
    hw = (im_size, im_size) if isinstance(im_size, int) and not isinstance(im_size, bool) else tuple(im_size)
    if len(hw) != 2:
        raise ValueError(f"im_size must be an int or an (H, W) pair, got {im_size!r}")
    for s in hw:
        _check_positive_int("im_size", s)
    return hw


def _is_mnist_like(channels: int, hw: tuple[int, int]) -> bool:
    """True for single-channel 28x28 inputs, which the reference nets pad up to 32x32."""
    return channels == 1 and hw == (28, 28)


def _norm(norm: str, c: int) -> nn.Module:
    """Normalization layer for `c` channels: instance = GroupNorm(c, c), layer = GroupNorm(1, c)."""
    norm = _check_choice("norm", norm, NORMS)
    if norm == "instance":
        return nn.GroupNorm(c, c, affine=True)
    if norm == "batch":
        return nn.BatchNorm2d(c)
    if norm == "layer":
        return nn.GroupNorm(1, c, affine=True)
    return nn.Identity()


def _act(act: str) -> nn.Module:
    """Activation module by name (relu, sigmoid or leakyrelu with slope 0.01)."""
    act = _check_choice("act", act, ACTS)
    return {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "leakyrelu": nn.LeakyReLU}[act]()


@torch.no_grad()
def _feature_dim(features: nn.Module, channels: int, hw: tuple[int, int]) -> int:
    """Flattened output size of `features` per (channels, H, W) input, from an eval-mode dry run."""
    was_training = features.training
    features.eval()  # no BatchNorm stat updates, and batch size 1 is allowed
    try:
        p = next(features.parameters(), None)
        x = torch.zeros(2, channels, *hw, device=p.device if p is not None else None,
                        dtype=p.dtype if p is not None else None)
        return features(x).flatten(1).shape[1]
    finally:
        features.train(was_training)


class _SafePool(nn.Module):
    """2x2 stride-2 pooling that is skipped when its output would be smaller than `min_out`, so tiny inputs survive.

    min_out=1 only protects 1x1 maps; min_out=2 also keeps maps that are normalized later at >= 2x2, since
    instance norm of a 1x1 map is a constant and would cut the input off from the logits.
    """

    def __init__(self, kind: str = "max", min_out: int = 1):
        super().__init__()
        self.pool = nn.MaxPool2d(2, 2) if kind == "max" else nn.AvgPool2d(2, 2)
        self.min_out = min_out

    def forward(self, x: Tensor) -> Tensor:
        """Pool `x` unless either pooled side would fall below `min_out`."""
        if x.shape[-2] // 2 < self.min_out or x.shape[-1] // 2 < self.min_out:
            return x
        return self.pool(x)


class _Net(nn.Module):
    """Shared tail of every registry net: `forward` is the linear `classifier` applied to `embed`."""

    classifier: nn.Linear
    feature_dim: int

    def embed(self, x: Tensor) -> Tensor:
        """Features right before the last linear layer, shape (N, feature_dim)."""
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        """Logits of shape (N, num_classes)."""
        return self.classifier(self.embed(x))


# ----------------------------------------------------------------------------- networks

def default_depth(im_size: int | tuple[int, int], channels: int = 1) -> int:
    """The field's ConvNet depth for an input size: enough blocks to leave a 4x4 map before the head.

    32x32 (and 28x28, padded to 32) -> 3, 64x64 -> 4, 128x128 -> 5, as in the reference code;
    8x8 digits -> 1. Deeper nets on tiny inputs normalise over 2x2 or 1x1 maps, where instance
    norm degenerates and gradient matching stops working (measured on digits: IPC 2 DSA reaches
    87% of test accuracy with depth 2 and 93% with depth 1, against 21% with depth 3).
    """
    hw = _check_dims(channels, 1, im_size)
    side = 32 if _is_mnist_like(channels, hw) else min(hw)
    return max(1, (side // 4).bit_length() - 1)


class ConvNet(_Net):
    """The field's ConvNet: `depth` x [conv3x3 -> norm -> act -> pool 2x2], then a linear head.

    ``depth=None`` picks :func:`default_depth` for the input size (3 for 28x28 and 32x32).
    """

    def __init__(self, channels: int, num_classes: int, im_size: int | tuple[int, int], width: int = 128,
                 depth: int | None = None, norm: str = "instance", act: str = "relu", pool: str = "avg"):
        super().__init__()
        hw = _check_dims(channels, num_classes, im_size)
        if depth is None:
            depth = default_depth(hw, channels)
        _check_positive_int("width", width)
        _check_positive_int("depth", depth)
        norm, act, pool = _check_choice("norm", norm, NORMS), _check_choice("act", act, ACTS), \
            _check_choice("pool", pool, POOLS)
        pad0 = 3 if _is_mnist_like(channels, hw) else 1  # the reference turns 28x28 into 32x32
        if pool != "none":
            side = min(hw) + 2 * pad0 - 2  # after the first conv; each block then halves it
            max_depth = max(side.bit_length() - 1, 0)  # floor(log2(side)): halvings that keep >= 1
            if depth > max_depth:
                raise ValueError(f"ConvNet depth {depth} is too deep for {hw[0]}x{hw[1]} inputs with "
                                 f"pool={pool!r}: the largest depth that fits is {max_depth}")
        layers: list[nn.Module] = []
        for d in range(depth):
            layers += [nn.Conv2d(channels if d == 0 else width, width, 3, padding=pad0 if d == 0 else 1),
                       _norm(norm, width), _act(act)]
            if pool != "none":
                layers.append(nn.AvgPool2d(2, 2) if pool == "avg" else nn.MaxPool2d(2, 2))
        self.features = nn.Sequential(*layers)
        self.feature_dim = _feature_dim(self.features, channels, hw)
        self.classifier = nn.Linear(self.feature_dim, num_classes)

    def embed(self, x: Tensor) -> Tensor:
        """Flattened conv features right before the linear head, shape (N, feature_dim)."""
        return self.features(x).flatten(1)


class MLP(_Net):
    """Three-layer perceptron: flatten -> 128 -> ReLU -> 128 -> ReLU -> classes."""

    def __init__(self, channels: int, num_classes: int, im_size: int | tuple[int, int], width: int = 128):
        super().__init__()
        hw = _check_dims(channels, num_classes, im_size)
        _check_positive_int("width", width)
        self.fc1 = nn.Linear(channels * hw[0] * hw[1], width)
        self.fc2 = nn.Linear(width, width)
        self.feature_dim = width
        self.classifier = nn.Linear(width, num_classes)

    def embed(self, x: Tensor) -> Tensor:
        """Activations of the second hidden layer, shape (N, width)."""
        return F.relu(self.fc2(F.relu(self.fc1(x.flatten(1)))))


class LeNet(_Net):
    """LeNet-5: two conv5x5/ReLU/maxpool stages, then fc 120 -> 84 -> classes."""

    def __init__(self, channels: int, num_classes: int, im_size: int | tuple[int, int]):
        super().__init__()
        hw = _check_dims(channels, num_classes, im_size)
        small = min(hw) < 28  # too small for unpadded 5x5 convs: pad both so every input fits
        pad1 = 2 if small or _is_mnist_like(channels, hw) else 0
        pad2 = 2 if small else 0
        self.features = nn.Sequential(
            nn.Conv2d(channels, 6, 5, padding=pad1), nn.ReLU(), _SafePool("max"),
            nn.Conv2d(6, 16, 5, padding=pad2), nn.ReLU(), _SafePool("max"),
        )
        self.fc1 = nn.Linear(_feature_dim(self.features, channels, hw), 120)
        self.fc2 = nn.Linear(120, 84)
        self.feature_dim = 84
        self.classifier = nn.Linear(84, num_classes)

    def embed(self, x: Tensor) -> Tensor:
        """Activations of the 84-unit layer, shape (N, 84)."""
        return F.relu(self.fc2(F.relu(self.fc1(self.features(x).flatten(1)))))


class AlexNet(_Net):
    """The small-image AlexNet of DC's networks.py: five convs, three max-pools, one linear head."""

    def __init__(self, channels: int, num_classes: int, im_size: int | tuple[int, int]):
        super().__init__()
        hw = _check_dims(channels, num_classes, im_size)
        self.features = nn.Sequential(
            nn.Conv2d(channels, 128, 5, stride=1, padding=4 if _is_mnist_like(channels, hw) else 2),
            nn.ReLU(), _SafePool("max"),
            nn.Conv2d(128, 192, 5, padding=2), nn.ReLU(), _SafePool("max"),
            nn.Conv2d(192, 256, 3, padding=1), nn.ReLU(),
            nn.Conv2d(256, 192, 3, padding=1), nn.ReLU(),
            nn.Conv2d(192, 192, 3, padding=1), nn.ReLU(), _SafePool("max"),
        )
        self.feature_dim = _feature_dim(self.features, channels, hw)
        self.classifier = nn.Linear(self.feature_dim, num_classes)

    def embed(self, x: Tensor) -> Tensor:
        """Flattened conv features, shape (N, feature_dim)."""
        return self.features(x).flatten(1)


VGG11_CFG = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")


class VGG11(_Net):
    """VGG-11 with conv3x3 -> norm -> ReLU blocks and 2x2 max-pools, then a linear head.

    On inputs smaller than 32x32 the inner pools stop at 2x2 (the 28/32 reference shapes are unchanged).
    """

    def __init__(self, channels: int, num_classes: int, im_size: int | tuple[int, int], norm: str = "instance"):
        super().__init__()
        hw = _check_dims(channels, num_classes, im_size)
        norm = _check_choice("norm", norm, NORMS)
        layers: list[nn.Module] = []
        c_in = channels
        last_pool = len(VGG11_CFG) - 1 - VGG11_CFG[::-1].index("M")
        for i, v in enumerate(VGG11_CFG):
            if v == "M":  # pools followed by more norm layers keep the map >= 2x2
                layers.append(_SafePool("max", min_out=1 if i == last_pool else 2))
                continue
            pad = 3 if i == 0 and _is_mnist_like(channels, hw) else 1
            layers += [nn.Conv2d(c_in, v, 3, padding=pad), _norm(norm, v), nn.ReLU()]
            c_in = v
        self.features = nn.Sequential(*layers)
        self.feature_dim = _feature_dim(self.features, channels, hw)
        self.classifier = nn.Linear(self.feature_dim, num_classes)

    def embed(self, x: Tensor) -> Tensor:
        """Flattened conv features, shape (N, 512 * final spatial size)."""
        return self.features(x).flatten(1)


class BasicBlock(nn.Module):
    """ResNet basic block: two conv3x3 + norm with a (projected when needed) identity shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1, norm: str = "instance"):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = _norm(norm, c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, stride=1, padding=1, bias=False)
        self.bn2 = _norm(norm, c_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), _norm(norm, c_out))

    def forward(self, x: Tensor) -> Tensor:
        """relu(norm(conv(relu(norm(conv(x))))) + shortcut(x))."""
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet18(_Net):
    """ResNet-18 with the small-image stem (conv3x3 stride 1, no max-pool) and global average pooling.

    A stride-2 stage keeps stride 1 when it would shrink the map below 2x2 (only for inputs under 16x16).
    """

    def __init__(self, channels: int, num_classes: int, im_size: int | tuple[int, int], norm: str = "instance"):
        super().__init__()
        side = min(_check_dims(channels, num_classes, im_size))
        norm = _check_choice("norm", norm, NORMS)
        layers: list[nn.Module] = [nn.Conv2d(channels, 64, 3, stride=1, padding=1, bias=False),
                                   _norm(norm, 64), nn.ReLU()]
        c_in = 64
        for c_out, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            stride = stride if (side - 1) // stride + 1 >= 2 else 1  # instance norm of 1x1 maps is constant
            side = (side - 1) // stride + 1
            layers += [BasicBlock(c_in, c_out, stride, norm), BasicBlock(c_out, c_out, 1, norm)]
            c_in = c_out
        layers.append(nn.AdaptiveAvgPool2d(1))
        self.features = nn.Sequential(*layers)
        self.feature_dim = 512
        self.classifier = nn.Linear(512, num_classes)

    def embed(self, x: Tensor) -> Tensor:
        """Globally average-pooled last-stage features, shape (N, 512)."""
        return self.features(x).flatten(1)


# ----------------------------------------------------------------------------- registry

_REGISTRY: dict[str, Callable[..., nn.Module]] = {
    "convnet": ConvNet,
    "convnet-bn": functools.partial(ConvNet, norm="batch"),
    "convnet-ln": functools.partial(ConvNet, norm="layer"),
    "convnet-nn": functools.partial(ConvNet, norm="none"),
    "mlp": MLP,
    "lenet": LeNet,
    "alexnet": AlexNet,
    "vgg11": VGG11,
    "vgg11-bn": functools.partial(VGG11, norm="batch"),
    "resnet18": ResNet18,
    "resnet18-bn": functools.partial(ResNet18, norm="batch"),
}


def list_networks() -> list[str]:
    """Names accepted by `get_network`, sorted."""
    return sorted(_REGISTRY)


def get_network(name: str, channels: int, num_classes: int, im_size: int | tuple[int, int],
                **kwargs) -> nn.Module:
    """Build the registry network `name` (case-insensitive); extra kwargs go to its constructor.

    A variant's fixed setting (e.g. norm="batch" for "convnet-bn") cannot be overridden with a different value.
    """
    key = name.strip().lower().replace("_", "-") if isinstance(name, str) else name
    if key not in _REGISTRY:
        raise ValueError(f"unknown network {name!r}; known networks: {', '.join(list_networks())}")
    factory = _REGISTRY[key]
    fixed = getattr(factory, "keywords", {})
    for k, v in kwargs.items():
        if k in fixed and (v.lower() if isinstance(v, str) else v) != fixed[k]:
            raise ValueError(f"network {key!r} fixes {k}={fixed[k]!r}; got {k}={v!r} (use the base name instead)")
    return factory(channels, num_classes, im_size, **kwargs)
