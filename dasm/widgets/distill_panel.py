"""DistillPanel: distill from a notebook with live progress, loss curve, image grid and per-segment rows.

The panel reads its controls when Run is pressed, checks them (before any data is loaded) and
calls :func:`dasm.runs.distill_run` in a background thread (so the notebook stays live), exactly
as ``dasm distill`` does: the set is saved in ``<out>/<dataset>-<method>-ipc<ipc>-seed<seed>-<key>``,
named by every setting, so a changed setting starts a new run and a rerun with the same settings
loads or resumes it; :func:`dasm.runs.evaluate_run` then evaluates it once. Stop (or an interrupt
of ``run(block=True)``) ends the distillation after the current iteration and keeps what was learned.
"""

from __future__ import annotations

import html
import threading
import traceback
from pathlib import Path

import ipywidgets as widgets
import pandas as pd
from tqdm.auto import tqdm as _auto_tqdm
from tqdm.std import tqdm as _text_tqdm

from ..config import RunConfig
from ..data import Dataset, canonical_name, load_dataset
from ..device import resolve_device
from ..runs import distill_run, evaluate_run
from ..synthetic import SyntheticSet
from .base import Panel, StatusLine, text_output
from .capture import LogBuffer, thread_output
from .controls import lock_controls, make_controls, read_controls, show_preset_values, write_control
from .live import Throttle, grid_png, loss_png
from .phases import (after_segment_message, evaluation_message, iteration_message, segment_line, segments_html,
                     start_message)
from .spec import RunSpec, folder_state

# In a Jupyter kernel tqdm.auto draws widget bars, which a worker thread would put into whatever cell
# is current; the run's own tqdm output is used only where it is plain text (the panel's bars remain).
TEXT_TQDM = _auto_tqdm is _text_tqdm
_WHAT_RUN_DOES = {"new": "starts a new run in", "stopped": "resumes the stopped run in",
                  "finished": "loads the finished run in"}


def show_png(image: widgets.Image, png: bytes) -> None:
    """Show ``png`` in ``image``; an empty one hides the widget (no broken-image placeholder)."""
    image.value = png
    image.layout.display = None if png else "none"


class DistillPanel(Panel):
    """Controls, Run/Stop, progress bars, live loss and image grid, per-segment table and a run log for
    one :func:`dasm.runs.distill_run` (+ one evaluation); ``**overrides`` are further settings of the run
    (any :func:`dasm.config.knobs`, e.g. ``joint=0.5``). A number left ``None`` is the preset's value."""

    def __init__(self, dataset: str = "digits", method: str = "dasm", ipc: int = 10, segments: int = 5,
                 score: str = "loss", policy: str = "window", preset: str = "cpu", device: str = "auto",
                 seed: int = 0, iterations: int | None = None, out: str | Path = "data/runs/panel",
                 eval_epochs: int | None = None, *, probe_epochs: int | None = None, evaluate: bool = True,
                 **overrides: object) -> None:
        self.overrides: dict = dict(overrides)
        self.controls: dict[str, widgets.ValueWidget] = make_controls(
            dataset=canonical_name(dataset), method=method.lower(), ipc=ipc, segments=segments, score=score,
            policy=policy, probe_epochs=probe_epochs, preset=preset, iterations=iterations, device=str(device),
            seed=seed, out=str(out), evaluate=evaluate, eval_epochs=eval_epochs)
        self.run_button = widgets.Button(description="Run", button_style="primary", icon="play")
        self.stop_button = widgets.Button(description="Stop", button_style="warning", icon="stop", disabled=True)
        self.progress = widgets.IntProgress(value=0, min=0, max=1, description="overall")
        self.segment_progress = widgets.IntProgress(value=0, min=0, max=1, description="segment")
        self.loss_image = widgets.Image(format="png", layout=widgets.Layout(display="none"))
        self.grid_image = widgets.Image(format="png", layout=widgets.Layout(display="none"))
        self.target = widgets.HTML()   # what Run will do: start, resume or load which folder
        self.segment_table = widgets.HTML()
        self.status = StatusLine()
        self.log = widgets.Output()
        for w, css in ((self.run_button, "dasm-run"), (self.stop_button, "dasm-stop"),
                       (self.progress, "dasm-progress-overall"), (self.segment_progress, "dasm-progress-segment"),
                       (self.loss_image, "dasm-loss"), (self.grid_image, "dasm-grid"), (self.target, "dasm-target"),
                       (self.segment_table, "dasm-segments"), (self.log, "dasm-log")):
            w.add_class(css)
        self.widget = self._layout()

        self.result: SyntheticSet | None = None
        self.data: Dataset | None = None          # the dataset of the last run (class names, real images)
        self.history: list[dict] = []
        self.segment_rows: list[dict] = []
        self.accuracy: float | None = None
        self.evaluation: pd.DataFrame | None = None
        self.error: BaseException | None = None
        self.stopped = False
        self.resumed_at: int | None = None        # iterations a resumed run had done before this Run
        self.thread: threading.Thread | None = None
        self._spec: RunSpec | None = None          # the settings of the last run
        self._cfg: RunConfig | None = None
        self.out_dir: Path | None = self._folder_or_none()   # the last run's folder (before one: the next's)
        self._state = "new"
        self._plan = (1, 1)
        self._done = 0
        self._stop = threading.Event()
        self._buffer = LogBuffer()
        self._shown_log = -1
        self._throttle = Throttle()
        self._grid_throttle = Throttle(interval=2.0)  # a grid redraw costs more than a loss plot
        self._datasets: dict[tuple[str, str], Dataset] = {}

        self.run_button.on_click(lambda _: self.run())
        self.stop_button.on_click(lambda _: self.stop())
        for w in self.controls.values():
            w.observe(self._preview, names="value")
        self._preview()
        self.status.set("Ready: choose the settings and press Run.")

    def _layout(self) -> widgets.VBox:
        grid = widgets.GridBox(list(self.controls.values()),
                               layout=widgets.Layout(grid_template_columns="repeat(3, max-content)",
                                                     grid_gap="4px 12px"))
        log = widgets.Accordion(children=[self.log], titles=("run log",))
        box = widgets.VBox([grid, self.target, widgets.HBox([self.run_button, self.stop_button]),
                            widgets.VBox([self.progress, self.segment_progress]), self.status.widget,
                            widgets.HBox([self.loss_image, self.grid_image]), self.segment_table, log])
        box.add_class("dasm-distill-panel")
        return box

    # -- the public API ------------------------------------------------------------------
    def spec(self) -> RunSpec:
        """The run the controls describe right now (what Run will start); a ValueError for a bad number."""
        return RunSpec(**read_controls(self.controls), extra=dict(self.overrides))

    def set(self, **values: object) -> "DistillPanel":
        """Set controls by name (``panel.set(method="idc", ipc=2, iterations=None)``; ``None``: the preset's
        value); returns the panel. Raises RuntimeError while a run goes (the controls are locked)."""
        unknown = set(values) - set(self.controls)
        if unknown:
            raise KeyError(f"No control named {sorted(unknown)}; the controls are {', '.join(self.controls)}.")
        if self.running:
            raise RuntimeError("A run is under way: its settings are locked until it ends (or Stop).")
        for name, value in values.items():
            write_control(self.controls, name, value)
        return self

    @property
    def running(self) -> bool:
        """Whether a run (distillation or its evaluation) is under way."""
        return self.thread is not None and self.thread.is_alive()

    def run(self, block: bool = False) -> threading.Thread | None:
        """Start the run the controls describe in a background thread (the Run button); return the thread.

        Settings that cannot run (an unknown setting, IPC below 1 or above what the dataset's classes
        hold, more segments than IPC, a missing device) are refused before any data is loaded: the status
        says why and no thread starts (None). ``block=True`` waits for the run to end and re-raises its
        error (or the refusal); an interrupt (KeyboardInterrupt) while it waits stops the run after the
        current iteration, waits for the worker to end, keeps what was learned and is raised again.
        Raises RuntimeError while another run is under way.
        """
        if self.running:
            raise RuntimeError("A run is under way: stop it or wait for it first.")
        try:
            spec = self.spec()
            cfg = spec.check()
        except ValueError as err:
            self.error = err
            self.status.set(f"Not started: {err}", "error")
            if block:
                raise
            return None
        self._reset(spec, cfg)
        self._lock(True)
        self.thread = threading.Thread(target=self._work, args=(spec, cfg), name="dasm-distill-panel", daemon=True)
        self.thread.start()
        if block:
            self._block()
        return self.thread

    def stop(self) -> None:
        """Ask the distillation to end after its current iteration (the Stop button); what it learned is kept.
        A selection or an evaluation under way runs to its end first; a pending evaluation is skipped."""
        self._stop.set()
        if self.running:
            distilling = not self.stop_button.disabled
            self.stop_button.disabled = True
            self.status.set("Stopping after the current iteration ..." if distilling else
                            "Stopping: the current step (a selection or an evaluation) finishes first ...", "warn")

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the run to end (at most ``timeout`` seconds); return whether it has ended. An interrupt
        ends the waiting, not the run (Stop does; ``run(block=True)`` turns an interrupt into Stop)."""
        if self.thread is not None:
            self.thread.join(timeout)
        return not self.running

    # -- before a run ----------------------------------------------------------------------
    def _folder_or_none(self) -> Path | None:
        try:
            return self.spec().folder()
        except ValueError:
            return None

    def _preview(self, _change: object = None) -> None:
        """After a change of the settings: enable the controls the method takes, then :meth:`_describe`."""
        if not self.running:
            lock_controls(self.controls, False)
            self._describe()

    def _describe(self) -> None:
        """Show the preset's numbers in the empty number boxes and say what Run will do (or why it cannot)."""
        try:
            spec = self.spec()
            cfg = spec.check()
        except ValueError as err:
            show_preset_values(self.controls, None)
            self.target.value = f'<span style="color:#cf222e">Cannot run: {html.escape(str(err))}</span>'
            return
        show_preset_values(self.controls, cfg)
        folder = Path(spec.out) / cfg.name()
        self.target.value = (f"Run {_WHAT_RUN_DOES[folder_state(folder)]} "
                             f"<code>{html.escape(str(folder))}</code>")

    def _lock(self, locked: bool) -> None:
        """Lock the settings and Run while a run goes (Stop enabled where it can end the run); unlock after."""
        lock_controls(self.controls, locked)
        self.run_button.disabled = locked
        self.stop_button.disabled = not (locked and self._spec is not None and self._spec.can_stop)

    def _block(self) -> None:
        """Wait for the worker; an interrupt becomes Stop, and the worker has ended when it is raised again."""
        try:
            self.wait()
        except KeyboardInterrupt:
            self.stop()
            while self.running:
                try:
                    self.wait()
                except KeyboardInterrupt:   # a second interrupt: still wait, never leave the worker running
                    continue
            raise
        if self.error is not None:
            raise self.error

    def _reset(self, spec: RunSpec, cfg: RunConfig) -> None:
        self._spec, self._cfg, self.out_dir = spec, cfg, Path(spec.out) / cfg.name()
        self._state = folder_state(self.out_dir)
        self.result, self.evaluation, self.accuracy, self.error, self.stopped = None, None, None, None, False
        self.history, self.segment_rows, self.resumed_at = [], [], None
        self._plan, self._done = (1, 1), 0
        self._stop.clear()
        self._buffer.clear()
        for bar in (self.progress, self.segment_progress):
            bar.value, bar.bar_style = 0, ""
        self.segment_progress.description = "segment"
        show_png(self.loss_image, b"")
        show_png(self.grid_image, b"")
        self.segment_table.value = ""
        self._show_log(force=True)
        self.status.set(f"Starting {spec.method} IPC {spec.ipc} on {spec.dataset} ...")

    # -- the run (in the worker thread) ----------------------------------------------------
    def _work(self, spec: RunSpec, cfg: RunConfig) -> None:
        try:
            with thread_output(self._buffer.write):
                data = self.data = self._dataset(spec.dataset, spec.device)
                self._distill(spec, cfg, data)
                if spec.evaluate and not self._stop.is_set():   # a stopped run is not evaluated
                    self._evaluate(spec, cfg, data)
            self._finish(spec)
        except Exception as err:  # shown in the panel and kept in .error; the thread ends here
            self.error = err
            self._buffer.write(traceback.format_exc())
            self.progress.bar_style = "danger"
            self.status.set(f"Error: {type(err).__name__}: {err}", "error")
        finally:
            self._show_log(force=True)
            self._lock(False)
            self._describe()   # the folder now holds a finished or a stopped run

    def _dataset(self, name: str, device: str) -> Dataset:
        dev = resolve_device(device)
        key = (canonical_name(name), str(dev))
        if key not in self._datasets:
            self.status.set(f"Loading {key[0]} on {dev} ...")
            self._datasets[key] = load_dataset(key[0], device=dev)
        return self._datasets[key]

    def _distill(self, spec: RunSpec, cfg: RunConfig, data: Dataset) -> None:
        self._plan = total, per_segment = spec.plan()
        self.progress.max, self.segment_progress.max = total, per_segment
        if self._stop.is_set():   # stopped while the data loaded
            self.stopped = True
            return
        self.status.set(start_message(cfg, self._state, self.out_dir))
        print(f"{spec.method} IPC {spec.ipc} on {data.name}, {total} iterations, out {self.out_dir} ({self._state})")
        syn = distill_run(data, cfg, out=self.out_dir, progress=TEXT_TQDM, callback=self._on_iteration,
                          should_stop=self._stop.is_set, on_segment=self._on_segment)
        self.stop_button.disabled = True
        self.result = syn
        self.stopped = spec.can_stop and self._stop.is_set() and not (self.out_dir / "synthetic.pt").exists()
        if syn.meta.get("segment_logs"):  # every segment, also those a resumed run loaded
            self.segment_rows = [dict(r) for r in syn.meta["segment_logs"]]
            self.segment_table.value = segments_html(self.segment_rows)
        if not self.history and (self.out_dir / "history.csv").exists():  # a finished run that was loaded
            self.history = pd.read_csv(self.out_dir / "history.csv").to_dict("records")
        self._show_loss()
        show_png(self.grid_image, grid_png(syn))  # before the bar completes: a finished bar means a grid is shown
        if not self.stopped:
            self.progress.value, self.segment_progress.value = total, self.segment_progress.max
        print(f"saved {self.out_dir / ('partial.pt' if self.stopped else 'synthetic.pt')}"
              + (" (stopped early: Run again resumes it)" if self.stopped else ""))

    def _on_iteration(self, log: dict) -> None:
        log = dict(log)
        snapshot = log.pop("snapshot", None)
        self.history.append(log)
        total, per_segment = self._plan
        step = int(log["iteration"]) + 1
        stage_total = total
        if self._spec.is_dasm:
            k = int(log.get("segment", 0))
            joint = log.get("stage") == "joint"
            stage_total = total - k * per_segment if joint else per_segment
            self._done = min(k * per_segment + step, total)
            self.segment_progress.max = stage_total
            self.segment_progress.description = "joint pass" if joint else f"segment {k + 1}/{self._spec.segments}"
            self.segment_progress.value = min(step, stage_total)
        else:
            self._done = min(step, total)
            self.segment_progress.value = self._done
        if self.resumed_at is None:
            self.resumed_at = self._done - 1
        self.progress.value = self._done
        if self._throttle.ready(force=step == 1):
            if not self._stop.is_set():
                self.status.set(iteration_message(log, self._cfg, self._done, total, stage_total))
            self._show_loss()
            self._show_log()
        if snapshot is not None and self._grid_throttle.ready():
            show_png(self.grid_image, grid_png(snapshot()))  # the images as they change

    def _on_segment(self, log: dict, syn: SyntheticSet) -> None:
        self.segment_rows.append(dict(log))
        self.segment_table.value = segments_html(self.segment_rows)
        show_png(self.grid_image, grid_png(syn))
        self._show_loss()
        print(segment_line(log, self._spec.segments))
        message = after_segment_message(log, self._cfg)
        if message and not self._stop.is_set():
            self.status.set(message)

    def _evaluate(self, spec: RunSpec, cfg: RunConfig, data: Dataset) -> None:
        self.status.set(evaluation_message(cfg, spec.seed, spec.evaluation_epochs()))
        df = evaluate_run(self.out_dir, data, preset=spec.preset, seeds=[spec.seed],
                          epochs=spec.evaluation_epochs(), progress=TEXT_TQDM)
        self.evaluation = df
        acc = df.loc[df["metric"] == "test_acc", "value"]
        self.accuracy = float(acc.mean()) if len(acc) else None
        if self.accuracy is not None:
            print(f"test accuracy {self.accuracy:.2f}% ({df['protocol'].iloc[0]})")

    def _finish(self, spec: RunSpec) -> None:
        acc = f"; test accuracy {self.accuracy:.1f}%" if self.accuracy is not None else ""
        total = self._plan[0]
        if self.stopped:
            self.progress.bar_style = "warning"
            self.status.set(f"Stopped after {self._done}/{total} iterations; what was learned is kept in "
                            f"{self.out_dir} (partial.pt and checkpoints): Run again resumes it.", "warn")
        elif self._stop.is_set() and spec.evaluate and self.evaluation is None:
            self.stopped = True
            self.progress.bar_style = "warning"
            self.status.set(f"Stopped before the evaluation; the finished set is saved in {self.out_dir}: "
                            "Run again evaluates it.", "warn")
        else:
            self.progress.bar_style = "success"
            how = {"finished": "loaded the finished run", "stopped": "resumed and finished"}.get(self._state, "saved")
            since = f" (from iteration {self.resumed_at}/{total})" if self._state == "stopped" and self.resumed_at else ""
            self.status.set(f"Done: {spec.method} IPC {spec.ipc} on {spec.dataset} {how}{since} in "
                            f"{self.out_dir}{acc}", "ok")

    # -- views ----------------------------------------------------------------------------
    def _show_loss(self) -> None:
        if self.history:
            show_png(self.loss_image, loss_png(list(self.history), self._spec.method,
                                               f"{self._spec.method} IPC {self._spec.ipc}: matching loss"))

    def _show_log(self, force: bool = False) -> None:
        version = self._buffer.version
        if force or version != self._shown_log:
            self._shown_log = version
            self.log.outputs = (text_output(self._buffer.text()),)
