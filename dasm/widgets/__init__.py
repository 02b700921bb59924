"""ipywidgets panels for notebooks: thin faces over :mod:`dasm.runs` and :mod:`dasm.analysis`.

- :class:`DistillPanel` distills (or selects) a set in a background thread with live loss,
  image grid, per-segment table and progress bars, saves it like the CLI (in a folder named by
  every setting: a changed setting is a new run, an unchanged one resumes or loads) and evaluates
  it once. Settings that cannot run are refused before any data loads.
- :class:`ComparePanel` picks saved run folders and draws, in a background thread, the saturation
  curve (with the full-data line), the results table or the difficulty histograms of them.

Both show themselves when left bare at the end of a cell (``panel``); ``panel.widget`` is the
top-level box. No distillation or analysis logic lives here: every number comes from the
same public functions the CLI calls.
"""

from .compare_panel import ComparePanel
from .distill_panel import DistillPanel

__all__ = ["DistillPanel", "ComparePanel"]
