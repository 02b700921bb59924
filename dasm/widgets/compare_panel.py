"""ComparePanel: choose saved run folders and compare them with the analysis module's tables and figures.

Runs are the folders holding a ``synthetic.pt`` under the given paths
(:func:`dasm.analysis.figures.find_runs`); their ``results.csv`` tables are read with
:func:`dasm.runs.read_results`. The saturation curve and the results table redraw as soon as
the selection or the view changes; the difficulty histograms train a network per run, so
they wait for their button and show progress.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import ipywidgets as widgets
import pandas as pd
from matplotlib.figure import Figure

from ..analysis.figures import find_runs
from ..analysis.histograms import difficulty_table, plot_difficulty_histogram, train_on_set
from ..analysis.saturation import plot_saturation, saturation_table
from ..data import load_dataset
from ..device import resolve_device
from ..difficulty import loss_scores, reference_network
from ..runs import read_results
from ..synthetic import SyntheticSet
from .base import Panel, StatusLine, png_output, table_output
from .live import figure_png

VIEWS = ("saturation curve", "results table", "difficulty histograms")
_RESULT_COLUMNS = ("run", "dataset", "method", "ipc", "seed", "arch", "metric", "value", "protocol")


def _png_and_close(fig: Figure) -> bytes:
    """PNG bytes of a figure the analysis module drew with pyplot, which is then closed (so it never
    shows up again in a later cell)."""
    import matplotlib.pyplot as plt

    try:
        return figure_png(fig)
    finally:
        plt.close(fig)


class ComparePanel(Panel):
    """A list of the run folders under ``paths``, a Refresh button, a view (saturation curve, results table,
    difficulty histograms) and an Output drawing it for the selected runs."""

    def __init__(self, paths: list[str | os.PathLike] | str | os.PathLike = ("data/runs",), *,
                 view: str = "saturation curve", device: str = "auto", reference_epochs: int = 20,
                 reference_width: int = 128, set_epochs: int = 300, seed: int = 0) -> None:
        self.paths = [Path(paths)] if isinstance(paths, (str, os.PathLike)) else [Path(p) for p in paths]
        self.device, self.seed = device, seed
        self.reference_epochs, self.reference_width, self.set_epochs = reference_epochs, reference_width, set_epochs
        self.runs: dict[str, Path] = {}
        self.table: pd.DataFrame | None = None
        self.error: BaseException | None = None
        self._hold = False

        self.runs_box = widgets.SelectMultiple(description="runs", rows=8, layout=widgets.Layout(width="560px"))
        self.refresh_button = widgets.Button(description="Refresh", icon="refresh")
        self.view_box = widgets.Dropdown(options=VIEWS, value=view, description="view")
        self.histogram_button = widgets.Button(description="Compute histograms", icon="bar-chart",
                                               tooltip="trains a reference network and one network per run")
        self.progress = widgets.IntProgress(value=0, min=0, max=1, description="histograms")
        self.status = StatusLine()
        self.output = widgets.Output()
        for w, css in ((self.runs_box, "dasm-runs"), (self.refresh_button, "dasm-refresh"),
                       (self.view_box, "dasm-view"), (self.histogram_button, "dasm-histograms"),
                       (self.progress, "dasm-progress-compare"), (self.output, "dasm-compare-output")):
            w.add_class(css)
        side = widgets.VBox([self.refresh_button, self.view_box, self.histogram_button, self.progress])
        self.widget = widgets.VBox([widgets.HBox([self.runs_box, side]), self.status.widget, self.output])
        self.widget.add_class("dasm-compare-panel")

        self.refresh_button.on_click(lambda _: self.refresh())
        self.histogram_button.on_click(lambda _: self.compute_histograms())
        self.runs_box.observe(self._changed, names="value")
        self.view_box.observe(self._changed, names="value")
        self.refresh()

    @contextmanager
    def _holding(self) -> Iterator[None]:
        """Change controls without redrawing on every change."""
        self._hold = True
        try:
            yield
        finally:
            self._hold = False

    def _changed(self, _change: dict) -> None:
        if not self._hold:
            self.render()

    def _fail(self, err: Exception) -> None:
        self.error = err
        self.status.set(f"{type(err).__name__}: {err}", "error")

    # -- the public API ------------------------------------------------------------------
    def refresh(self) -> None:
        """Scan ``paths`` for run folders again (keeping the selection; all runs when nothing was selected) and redraw."""
        previous = set(self.runs_box.value)
        try:
            self.runs = find_runs(self.paths)
        except FileNotFoundError as err:
            self.runs = {}
            self.status.set(str(err), "warn")
        except Exception as err:  # e.g. a damaged synthetic.pt: say which
            self.runs = {}
            self._fail(err)
        with self._holding():
            self.runs_box.options = [(f"{name}   ({folder})", name) for name, folder in self.runs.items()]
            kept = tuple(name for name in self.runs if name in previous)
            self.runs_box.value = kept or tuple(self.runs)
        if self.runs:
            self.render()

    def select(self, *names: str) -> None:
        """Select the runs called ``names`` (keys of ``runs``; none given: all) and redraw."""
        unknown = [n for n in names if n not in self.runs]
        if unknown:
            raise KeyError(f"No run named {unknown}; the runs are {', '.join(self.runs)}.")
        self.runs_box.value = tuple(names) or tuple(self.runs)

    def selected(self) -> dict[str, Path]:
        """The selected runs: name -> folder."""
        return {name: self.runs[name] for name in self.runs_box.value}

    def render(self) -> None:
        """Draw the chosen view of the selected runs into ``output`` (histograms only when computed)."""
        view = self.view_box.value
        if view == "difficulty histograms":
            self.status.set("Press 'Compute histograms': it trains a reference network and one network per "
                            "selected run.")
            return
        chosen = self.selected()
        if not chosen:
            self.output.outputs = ()
            self.status.set("Select at least one run.", "warn")
            return
        try:
            results = read_results(list(chosen.values()))
            if results.empty:
                raise ValueError("The selected runs have no results.csv yet: evaluate them first "
                                 "(`dasm evaluate RUN`, or a DistillPanel run with evaluate on).")
            if view == "saturation curve":
                self._show_saturation(results)
            else:
                self._show_results(results)
            self.error = None
            self.status.set(f"{view} of {len(chosen)} run(s).", "ok")
        except Exception as err:
            self.output.outputs = ()
            self._fail(err)

    def compute_histograms(self) -> None:
        """Train a full-data reference network and one network per selected run, then draw which real
        samples each run's network gets right, by difficulty (the histogram button)."""
        chosen = self.selected()
        if not chosen:
            self.status.set("Select at least one run.", "warn")
            return
        with self._holding():
            self.view_box.value = "difficulty histograms"
        self.histogram_button.disabled = True
        try:
            sets = {name: SyntheticSet.load(folder / "synthetic.pt") for name, folder in chosen.items()}
            names = sorted({str(s.meta.get("dataset")) for s in sets.values()})
            if len(names) != 1:
                raise ValueError(f"The selected runs come from different datasets ({', '.join(names)}); "
                                 "select runs of one dataset.")
            data = load_dataset(names[0], device=resolve_device(self.device))
            self.progress.max, self.progress.value, self.progress.bar_style = 1 + len(sets), 0, ""
            self.status.set(f"Training a reference network (width {self.reference_width}) on all of {data.name} "
                            f"({self.reference_epochs} epochs) ...")
            reference = reference_network(data, epochs=self.reference_epochs, seed=self.seed,
                                          width=self.reference_width)
            scores = loss_scores(reference, data.x_train, data.y_train, data.normalize)
            self.progress.value += 1
            nets = {}
            for name, syn in sets.items():
                self.status.set(f"Training a network on {name} ({self.set_epochs} epochs) ...")
                nets[name] = train_on_set(data, *syn.decoded(), epochs=self.set_epochs, seed=self.seed)
                self.progress.value += 1
            table = difficulty_table(data, scores, score_name="loss", sets=nets)
            png = _png_and_close(plot_difficulty_histogram(table))
            self.output.outputs = (png_output(png, "difficulty histograms"),)
            self.table, self.error = table, None
            self.progress.bar_style = "success"
            self.status.set(f"Difficulty histograms of {len(sets)} run(s).", "ok")
        except Exception as err:
            self.progress.bar_style = "danger"
            self._fail(err)
        finally:
            self.histogram_button.disabled = False

    # -- views ----------------------------------------------------------------------------
    def _show_saturation(self, results: pd.DataFrame) -> None:
        table = saturation_table(results)
        png = _png_and_close(plot_saturation(table))
        self.output.outputs = (png_output(png, "saturation curve"),)
        self.table = table

    def _show_results(self, results: pd.DataFrame) -> None:
        entries = []
        self.table = results
        if (results["metric"] == "test_acc").any():
            self.table = saturation_table(results)
            summary = self.table.drop(columns=["is_full", "metric"], errors="ignore")
            entries.append(table_output(summary, "test accuracy (%): mean, std and count over seeds"))
        columns = [c for c in _RESULT_COLUMNS if c in results.columns]
        entries.append(table_output(results[columns], "every result row"))
        self.output.outputs = tuple(entries)
