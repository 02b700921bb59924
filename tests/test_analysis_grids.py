"""dasm.analysis.grids and dasm.synthetic.class_grid: one row per class, in label order."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from dasm.analysis.grids import plot_class_grid  # noqa: E402
from dasm.synthetic import class_grid  # noqa: E402


def test_class_grid_puts_each_class_on_its_own_row():
    # 3 classes x 2 images of 4x4, given out of order; class c's images are filled with c / 2
    labels = torch.tensor([2, 0, 1, 0, 2, 1])
    images = (labels.float() / 2).view(-1, 1, 1, 1).expand(6, 1, 4, 4)
    grid = class_grid(images, labels, 3)
    assert grid.shape == (3, 3 * 5 + 1, 2 * 5 + 1)      # 1-pixel gaps around 4x4 tiles, grey -> 3 channels
    for c in range(3):
        tile = grid[0, 1 + 5 * c:5 + 5 * c, 1:5]
        assert torch.allclose(tile, torch.full_like(tile, c / 2))


def test_plot_class_grid_names_the_rows(digits):
    idx = torch.cat([ix[:3] for ix in digits.class_index])
    fig = plot_class_grid(digits.x_train[idx], digits.y_train[idx], digits.classes, title="real digits")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == list(digits.classes)
    assert ax.get_title() == "real digits" and len(ax.images) == 1
    assert ax.images[0].get_array().shape[:2] == (10 * 9 + 1, 3 * 9 + 1)
    fig2, axes = plt.subplots(1, 2)
    plot_class_grid(digits.x_train[idx], digits.y_train[idx], digits.classes, ax=axes[1], names=False)
    assert axes[1].get_yticklabels() == [] or not any(t.get_text() for t in axes[1].get_yticklabels())
    plt.close("all")
