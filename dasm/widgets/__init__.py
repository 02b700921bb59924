"""ipywidgets panels for notebooks: thin faces over :mod:`dasm.runs` and :mod:`dasm.analysis`.

- :class:`DistillPanel` distills (or selects) a set in a background thread with live loss,
  image grid, per-segment table and progress bars, saves it like the CLI and evaluates it once.
- :class:`ComparePanel` picks saved run folders and draws the saturation curve, the results
  table or the difficulty histograms of them.

Both show themselves when left bare at the end of a cell (``panel``); ``panel.widget`` is the
top-level box. No distillation or analysis logic lives here: every number comes from the
same public functions the CLI calls.
"""

from .compare_panel import ComparePanel
from .distill_panel import DistillPanel

__all__ = ["DistillPanel", "ComparePanel"]
