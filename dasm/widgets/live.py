"""Live pictures for the panels as PNG bytes, safe to draw off the main thread.

Every figure here is a :class:`matplotlib.figure.Figure` on its own Agg canvas, so nothing
touches pyplot's global state; :class:`Throttle` keeps a live view to a few redraws a second.
"""

from __future__ import annotations

import io
import math
import tempfile
import threading
import time
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image as PILImage

from ..analysis.style import method_color
from ..synthetic import SyntheticSet, save_grid


class Throttle:
    """Says yes at most once every ``interval`` seconds (always when forced); thread-safe."""

    def __init__(self, interval: float = 0.4) -> None:
        self.interval = interval
        self._last = -math.inf
        self._lock = threading.Lock()

    def ready(self, force: bool = False) -> bool:
        """Whether to redraw now; a yes starts the next interval."""
        with self._lock:
            now = time.monotonic()
            if force or now - self._last >= self.interval:
                self._last = now
                return True
            return False


def figure_png(fig: Figure, dpi: int = 100) -> bytes:
    """``fig`` rendered as PNG bytes (the figure keeps its canvas; pyplot figures work too)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def loss_png(history: list[dict], method: str = "", title: str = "") -> bytes:
    """The matching loss of ``history`` (dicts with ``loss`` and optionally ``segment``) against iteration,
    with a dotted line where a new segment starts."""
    fig = Figure(figsize=(4.8, 2.8), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    steps = range(1, len(history) + 1)
    ax.plot(steps, [float(h["loss"]) for h in history], color=method_color(method), linewidth=1.2)
    for i in range(1, len(history)):
        if history[i].get("segment") != history[i - 1].get("segment"):
            ax.axvline(i + 0.5, color="0.6", linestyle=":", linewidth=1)
    ax.set_xlabel("iteration (this run)")
    ax.set_ylabel("matching loss")
    ax.set_title(title or "matching loss", fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return figure_png(fig)


def grid_png(syn: SyntheticSet, min_height: int = 240, max_scale: int = 8) -> bytes:
    """The set's image grid (one row per class, as :func:`dasm.synthetic.save_grid` draws it) as PNG bytes,
    enlarged with nearest-neighbour pixels to at least ``min_height`` pixels high where possible."""
    with tempfile.TemporaryDirectory() as tmp:
        path = save_grid(syn, Path(tmp) / "grid.png")
        image = PILImage.open(path)
        image.load()
    scale = max(1, min(max_scale, math.ceil(min_height / max(image.height, 1))))
    if scale > 1:
        image = image.resize((image.width * scale, image.height * scale), PILImage.Resampling.NEAREST)
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()
