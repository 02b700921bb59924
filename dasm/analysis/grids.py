"""Pictures of image sets: one row per class, named on the left (real subsets, synthetic sets, segments)."""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from torch import Tensor

from ..synthetic import class_grid
from .style import dasm_style


def plot_class_grid(images: Tensor, labels: Tensor, classes: Sequence[str], title: str | None = None,
                    ax: Axes | None = None, names: bool = True) -> Figure:
    """Draw ``images`` (pixels in [0, 1]) one row per class, left to right, into ``ax`` (a new figure if None).

    ``names`` writes the class names on the left; every class needs the same number of images.
    """
    import matplotlib.pyplot as plt

    grid = class_grid(images, labels, len(classes))
    per_class = max(len(labels) // max(len(classes), 1), 1)
    with dasm_style():
        if ax is None:
            _, ax = plt.subplots(figsize=(0.45 * per_class + 1.5, 0.45 * len(classes) + 0.6))
        ax.imshow(grid.permute(1, 2, 0).numpy(), interpolation="nearest")
        row = images.shape[-2] + 1   # image height plus the 1-pixel gap
        ax.set_yticks([1 + row * i + (row - 1) / 2 for i in range(len(classes))] if names else [],
                      list(classes) if names else [])
        ax.set_xticks([])
        ax.tick_params(length=0)
        ax.spines[:].set_visible(False)
        ax.grid(False)
        if title:
            ax.set_title(title)
    return ax.figure
