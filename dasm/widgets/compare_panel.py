"""ComparePanel: choose saved run folders and compare them with the analysis module's tables and figures.

Runs are the folders holding a ``synthetic.pt`` under the given paths
(:func:`dasm.analysis.figures.find_runs`), named ``<dataset>-<method>-ipc<ipc>-seed<seed>``; their
``results.csv`` tables are read with :func:`dasm.runs.read_results`, and the rows of
:func:`dasm.runs.full_data_run` found under the same paths (``method == "full"``) draw the full-data
line. Every change of the selection or the view clears the figure at once and redraws it in a
background worker (:class:`~dasm.widgets.jobs.LatestJob`: the latest change wins, a click handler
never computes); what was drawn is cached. The difficulty histograms train a network per run, so
they wait for their button the first time; the trained networks are cached too.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import ipywidgets as widgets
import pandas as pd
from matplotlib.figure import Figure

from ..analysis.figures import find_runs
from ..analysis.errors import train_on_set
from ..analysis.histograms import difficulty_table, plot_difficulty_histogram
from ..analysis.saturation import plot_saturation, saturation_table
from ..data import Dataset, load_dataset
from ..device import resolve_device
from ..difficulty import loss_scores, reference_network
from ..runs import read_results
from ..synthetic import SyntheticSet
from .base import Panel, StatusLine, png_output, table_output
from .jobs import LatestJob
from .live import figure_png

VIEWS = ("saturation curve", "results table", "difficulty histograms")
_RESULT_COLUMNS = ("run", "dataset", "method", "ipc", "seed", "arch", "metric", "value", "protocol")
_HISTOGRAM_PROMPT = ("Press 'Compute histograms': it trains a reference network and one network per selected run "
                     "({missing} network(s) still to train).")


def _png_and_close(fig: Figure) -> bytes:
    """PNG bytes of a figure the analysis module drew with pyplot, which is then closed (so it never
    shows up again in a later cell)."""
    import matplotlib.pyplot as plt

    try:
        return figure_png(fig)
    finally:
        plt.close(fig)


def run_label(folder: Path) -> str:
    """``<dataset>-<method>-ipc<ipc>-seed<seed>`` of a run folder, from its ``config.json`` (else its set's metadata)."""
    config = folder / "config.json"
    c = json.loads(config.read_text()) if config.exists() else {}
    if not all(k in c for k in ("dataset", "method", "ipc", "seed")):
        syn = SyntheticSet.load(folder / "synthetic.pt")
        c = {"dataset": syn.meta.get("dataset", "?"), "method": syn.meta.get("method", folder.name),
             "ipc": syn.ipc, "seed": syn.meta.get("seed", "?")}
    return f"{c['dataset']}-{c['method']}-ipc{c['ipc']}-seed{c['seed']}"


def label_runs(folders: list[Path]) -> dict[str, Path]:
    """Name each run folder by :func:`run_label`; runs that share a label (other settings) add their folder's
    settings key (or name) to it. A set saved inside another run's folder (DASM's ``joint/`` pass) is no run."""
    runs_at = {f.resolve() for f in folders}
    folders = [f for f in folders if not any(p in runs_at for p in f.resolve().parents)]
    labels = [run_label(f) for f in folders]
    runs: dict[str, Path] = {}
    for label, folder in zip(labels, folders):
        if labels.count(label) > 1:
            tail = folder.name[len(label) + 1:] if folder.name.startswith(label + "-") else folder.name
            label = f"{label}-{tail}"
        while label in runs:
            label += "'"
        runs[label] = folder
    return runs


def _signature(paths: list[Path]) -> tuple:
    """Every ``results.csv`` under ``paths`` with its size and modification time: a cached view is
    redrawn once any of them changes."""
    files = sorted(f for p in paths for f in ([p] if p.is_file() else p.rglob("results.csv")))
    return tuple((str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in files)


class ComparePanel(Panel):
    """A list of the run folders under ``paths``, a Refresh button, a view (saturation curve, results table,
    difficulty histograms), a full-data-line switch and an Output drawing the view of the selected runs.
    Call :meth:`wait` to wait for the drawing (the panel draws in a background thread)."""

    def __init__(self, paths: list[str | os.PathLike] | str | os.PathLike = ("data/runs",), *,
                 view: str = "saturation curve", full_data: bool = True, device: str = "auto",
                 reference_epochs: int = 20, reference_width: int = 128, set_epochs: int = 300,
                 seed: int = 0) -> None:
        self.paths = [Path(paths)] if isinstance(paths, (str, os.PathLike)) else [Path(p) for p in paths]
        self.device, self.seed = device, seed
        self.reference_epochs, self.reference_width, self.set_epochs = reference_epochs, reference_width, set_epochs
        self.runs: dict[str, Path] = {}
        self.table: pd.DataFrame | None = None
        self.error: BaseException | None = None
        self._hold = False
        self._jobs = LatestJob("dasm-compare-panel")
        self._views: dict[tuple, tuple[tuple, pd.DataFrame | None, str]] = {}   # drawn views: outputs, table, text
        self._datasets: dict[str, Dataset] = {}
        self._scores: dict[str, object] = {}      # dataset -> difficulty (loss) under the reference network
        self._nets: dict[Path, object] = {}       # run folder -> network trained on its set

        self.runs_box = widgets.SelectMultiple(description="runs", rows=8, layout=widgets.Layout(width="560px"))
        self.refresh_button = widgets.Button(description="Refresh", icon="refresh")
        self.view_box = widgets.Dropdown(options=VIEWS, value=view, description="view")
        self.full_box = widgets.Checkbox(value=full_data, description="full-data line", indent=False)
        self.histogram_button = widgets.Button(description="Compute histograms", icon="bar-chart",
                                               tooltip="trains a reference network and one network per run")
        self.progress = widgets.IntProgress(value=0, min=0, max=1, description="working")
        self.status = StatusLine()
        self.output = widgets.Output()
        for w, css in ((self.runs_box, "dasm-runs"), (self.refresh_button, "dasm-refresh"),
                       (self.view_box, "dasm-view"), (self.full_box, "dasm-full-line"),
                       (self.histogram_button, "dasm-histograms"), (self.progress, "dasm-progress-compare"),
                       (self.output, "dasm-compare-output")):
            w.add_class(css)
        side = widgets.VBox([self.refresh_button, self.view_box, self.full_box, self.histogram_button, self.progress])
        self.widget = widgets.VBox([widgets.HBox([self.runs_box, side]), self.status.widget, self.output])
        self.widget.add_class("dasm-compare-panel")

        self.refresh_button.on_click(lambda _: self.refresh())
        self.histogram_button.on_click(lambda _: self.compute_histograms())
        for box in (self.runs_box, self.view_box, self.full_box):
            box.observe(self._changed, names="value")
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

    # -- the public API ------------------------------------------------------------------
    def refresh(self) -> None:
        """Scan ``paths`` for run folders again in the background (keeping the selection; all runs when
        nothing was selected), then redraw."""
        self.output.outputs = ()
        self.status.set("Looking for runs ...")
        self._jobs.submit(self._scan)

    def select(self, *names: str) -> None:
        """Select the runs called ``names`` (keys of ``runs``; none given: all); the view redraws."""
        unknown = [n for n in names if n not in self.runs]
        if unknown:
            raise KeyError(f"No run named {unknown}; the runs are {', '.join(self.runs)}.")
        self.runs_box.value = tuple(names) or tuple(self.runs)

    def selected(self) -> dict[str, Path]:
        """The selected runs: name -> folder."""
        return {name: self.runs[name] for name in self.runs_box.value if name in self.runs}

    def render(self) -> None:
        """Clear the figure and redraw the chosen view of the selected runs in the background (histograms
        only where their networks are trained; see :meth:`compute_histograms`)."""
        self._submit(train=False)

    def compute_histograms(self) -> None:
        """Train (in the background) a full-data reference network and one network per selected run not yet
        trained, then draw which real samples each run's network gets right, by difficulty."""
        with self._holding():
            self.view_box.value = "difficulty histograms"
        self._submit(train=True)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the panel has drawn what was asked last (at most ``timeout`` seconds); return whether it has."""
        return self._jobs.wait(timeout)

    # -- the worker ------------------------------------------------------------------------
    def _submit(self, train: bool) -> None:
        request = (self.view_box.value, tuple(self.selected().items()), self.full_box.value, train)
        self.output.outputs = ()   # never a figure of an earlier selection next to this one's controls
        self.status.set(f"Drawing the {request[0]} of {len(request[1])} run(s) ...")
        self._jobs.submit(lambda generation: self._draw(generation, request))

    def _say(self, generation: int, text: str, kind: str = "info") -> None:
        if self._jobs.is_current(generation):
            self.status.set(text, kind)

    def _scan(self, generation: int) -> None:
        previous = set(self.runs_box.value)
        try:
            runs = label_runs(list(find_runs(self.paths).values()))
        except FileNotFoundError as err:
            runs = {}
            self._say(generation, str(err), "warn")
        except Exception as err:  # e.g. a damaged synthetic.pt: say which
            runs = {}
            self.error = err
            self._say(generation, f"{type(err).__name__}: {err}", "error")
        self.runs = runs
        with self._holding():
            self.runs_box.options = [(f"{name}   ({folder})", name) for name, folder in runs.items()]
            kept = tuple(name for name in runs if name in previous)
            self.runs_box.value = kept or tuple(runs)
        if runs:
            self._draw(generation, (self.view_box.value, tuple(self.selected().items()), self.full_box.value, False))

    def _draw(self, generation: int, request: tuple) -> None:
        view, chosen, full, train = request
        chosen = dict(chosen)
        self.progress.value, self.progress.max, self.progress.bar_style = 0, 1, ""
        try:
            if not chosen:
                drawn = ((), None, "Select at least one run.")
            elif view == "difficulty histograms":
                drawn = self._views.get((view, tuple(chosen.values())))
                drawn = drawn or self._histograms(generation, chosen, train)
            else:
                key = (view, tuple(chosen.values()), full, _signature(self.paths))
                drawn = self._views[key] = self._views.get(key) or self._results_view(view, chosen, full)
            if drawn is None or not self._jobs.is_current(generation):
                return   # a newer request came in: its job draws
            outputs, table, text = drawn
            self.output.outputs, self.table, self.error = outputs, table, None
            self.progress.value, self.progress.bar_style = self.progress.max, "success" if outputs else ""
            self.status.set(text, "ok" if outputs else "warn" if not chosen else "info")
        except Exception as err:
            if self._jobs.is_current(generation):
                self.output.outputs, self.error = (), err
                self.progress.bar_style = "danger"
                self.status.set(f"{type(err).__name__}: {err}", "error")

    def _results_view(self, view: str, chosen: dict[str, Path], full: bool) -> tuple[tuple, pd.DataFrame, str]:
        """The saturation curve or the results table of ``chosen``, with the full-data rows of their datasets."""
        every = read_results(self.paths)
        names = {folder.resolve(): name for name, folder in chosen.items()}
        runs = every["run"].map(lambda r: names.get(Path(r).resolve())) if len(every) else pd.Series(dtype=object)
        mine = every[runs.notna()].assign(run=runs[runs.notna()]) if len(every) else every
        if mine.empty:
            raise ValueError("The selected runs have no results.csv yet: evaluate them first "
                             "(`dasm evaluate RUN`, or a DistillPanel run with evaluate on).")
        is_full = (every["method"] == "full") & every["dataset"].isin(set(mine["dataset"]))
        full_rows = every[is_full & (every["metric"] == "test_acc")] if full else every.iloc[:0]
        results = pd.concat([mine, full_rows.assign(run="full data")], ignore_index=True)
        line = (f"; full-data line: {len(full_rows)} result(s)" if len(full_rows) else
                "; no full-data results under the folders (dasm.runs.full_data_run makes them)" if full else "")
        text = f"{view} of {len(chosen)} run(s){line}."
        if view == "saturation curve":
            table = saturation_table(results)
            png = _png_and_close(plot_saturation(table, full_line=full))
            return (png_output(png, "saturation curve"),), table, text
        entries, table = [], results
        if (results["metric"] == "test_acc").any():
            table = saturation_table(results)
            summary = table.drop(columns=["is_full", "metric"], errors="ignore")
            entries.append(table_output(summary, "test accuracy (%): mean, std and count over seeds"))
        columns = [c for c in _RESULT_COLUMNS if c in results.columns]
        entries.append(table_output(results[columns], "every result row"))
        return tuple(entries), table, text

    def _dataset(self, name: str) -> Dataset:
        if name not in self._datasets:
            self._datasets[name] = load_dataset(name, device=resolve_device(self.device))
        return self._datasets[name]

    def _histograms(self, generation: int, chosen: dict[str, Path], train: bool) -> tuple | None:
        """The difficulty histograms of ``chosen``, training what is not cached when ``train``; None when a
        newer request came in, and an empty view asking for the button when networks are missing."""
        sets = {name: SyntheticSet.load(folder / "synthetic.pt") for name, folder in chosen.items()}
        datasets = sorted({str(s.meta.get("dataset")) for s in sets.values()})
        if len(datasets) != 1:
            raise ValueError(f"The selected runs come from different datasets ({', '.join(datasets)}); "
                             "select runs of one dataset.")
        missing = [name for name, folder in chosen.items() if folder not in self._nets]
        todo = missing + ([] if datasets[0] in self._scores else ["reference"])
        if todo and not train:
            return (), None, _HISTOGRAM_PROMPT.format(missing=len(todo))
        data = self._dataset(datasets[0])
        self.progress.max = len(todo)
        if data.name not in self._scores:
            self._say(generation, f"Training a reference network (width {self.reference_width}) on all of "
                      f"{data.name} ({self.reference_epochs} epochs) ...")
            reference = reference_network(data, epochs=self.reference_epochs, seed=self.seed,
                                          width=self.reference_width)
            self._scores[data.name] = loss_scores(reference, data.x_train, data.y_train, data.normalize)
            self.progress.value += 1
        for name in missing:
            if not self._jobs.is_current(generation):
                return None   # what was trained so far stays cached
            self._say(generation, f"Training a network on {name} ({self.set_epochs} epochs) ...")
            self._nets[chosen[name]] = train_on_set(data, *sets[name].decoded(), epochs=self.set_epochs,
                                                    seed=self.seed)
            self.progress.value += 1
        nets = {name: self._nets[folder] for name, folder in chosen.items()}
        table = difficulty_table(data, self._scores[data.name], score_name="loss", sets=nets)
        png = _png_and_close(plot_difficulty_histogram(table))
        drawn = (png_output(png, "difficulty histograms"),), table, f"Difficulty histograms of {len(sets)} run(s)."
        self._views[("difficulty histograms", tuple(chosen.values()))] = drawn
        return drawn
