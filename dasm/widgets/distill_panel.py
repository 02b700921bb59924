"""DistillPanel: distill from a notebook with live progress, loss curve, image grid and per-segment rows.

The panel reads its controls when Run is pressed and calls :func:`dasm.runs.distill_run` in a
background thread (so the notebook stays live), exactly as ``dasm distill`` does: the set is
saved in ``<out>/<dataset>-<method>-ipc<ipc>-seed<seed>``, a rerun with the same settings loads
or resumes it, and :func:`dasm.runs.evaluate_run` then evaluates it once. Stop ends the
distillation after the current iteration and keeps what was learned.
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

from ..config import PRESETS
from ..data import Dataset, canonical_name, list_datasets, load_dataset
from ..device import resolve_device
from ..difficulty import SCORES
from ..methods import REGISTRY, method_names
from ..runs import distill_run, evaluate_run
from ..sequential import POLICIES
from ..synthetic import SyntheticSet
from .base import Panel, StatusLine, text_output
from .capture import LogBuffer, thread_output
from .live import Throttle, grid_png, loss_png
from .spec import RunSpec

# In a Jupyter kernel tqdm.auto draws widget bars, which a worker thread would put into whatever cell
# is current; the run's own tqdm output is used only where it is plain text (the panel's bars remain).
TEXT_TQDM = _auto_tqdm is _text_tqdm
DASM_ONLY = ("segments", "score", "policy", "probe_epochs")
_NUMBER_TIP = "0: the preset's value"


def segments_html(rows: list[dict]) -> str:
    """An HTML table of DASM segment logs: probe accuracy, difficulty window, pool size, loss and seconds."""
    if not rows:
        return ""
    head = ("segment", "IPC", "probe acc", "difficulty window", "pool size", "final loss", "seconds")
    body = []
    for r in rows:
        if "probe_val_acc" in r:
            probe = f"{r['probe_val_acc']:.1f}% (val)"
        elif "probe_real_acc" in r:
            probe = f"{r['probe_real_acc']:.1f}% (train)"
        else:
            probe = "no probe"
        window = f"{r['quantile_lo']:.2f} – {r['quantile_hi']:.2f}" if "score_mean" in r else "all data"
        name = "joint" if r.get("stage") == "joint" else int(r["segment"]) + 1
        cells = (name, r.get("ipc", ""), probe, window, r.get("pool_size", ""),
                 f"{r['final_loss']:.4g}" if "final_loss" in r else "", f"{r.get('seconds', 0.0):.1f}")
        body.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
    header = "<tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"
    return f'<table class="dasm-segment-table">{header}{"".join(body)}</table>'


def _segment_line(log: dict, segments: int) -> str:
    acc = log.get("probe_val_acc", log.get("probe_real_acc"))
    probe = f"probe acc {acc:.1f}%, " if acc is not None else ""
    name = "joint pass" if log.get("stage") == "joint" else f"segment {int(log['segment']) + 1}/{segments}"
    return (f"{name}: {probe}pool {log.get('pool_size')}, "
            f"final loss {log.get('final_loss', float('nan')):.4g}, {log.get('seconds', 0.0):.1f} s")


class DistillPanel(Panel):
    """Controls, Run/Stop, progress bars, live loss and image grid, per-segment table and a run log for
    one :func:`dasm.runs.distill_run` (+ one evaluation); ``**overrides`` go to ``distill_run`` as they are."""

    def __init__(self, dataset: str = "digits", method: str = "dasm", ipc: int = 10, segments: int = 5,
                 score: str = "loss", policy: str = "window", preset: str = "cpu", device: str = "auto",
                 seed: int = 0, iterations: int | None = None, out: str | Path = "data/runs/panel",
                 eval_epochs: int | None = None, *, probe_epochs: int | None = None, evaluate: bool = True,
                 **overrides: object) -> None:
        self.overrides: dict = dict(overrides)
        self.controls: dict[str, widgets.ValueWidget] = self._make_controls(
            dataset=canonical_name(dataset), method=method.lower(), ipc=ipc, segments=segments, score=score,
            policy=policy, probe_epochs=probe_epochs or 0, preset=preset, iterations=iterations or 0,
            device=str(device), seed=seed, out=str(out), evaluate=evaluate, eval_epochs=eval_epochs or 0)
        self.run_button = widgets.Button(description="Run", button_style="primary", icon="play")
        self.stop_button = widgets.Button(description="Stop", button_style="warning", icon="stop", disabled=True)
        self.progress = widgets.IntProgress(value=0, min=0, max=1, description="overall")
        self.segment_progress = widgets.IntProgress(value=0, min=0, max=1, description="segment")
        self.loss_image = widgets.Image(format="png")
        self.grid_image = widgets.Image(format="png")
        self.segment_table = widgets.HTML()
        self.status = StatusLine()
        self.log = widgets.Output()
        for w, css in ((self.run_button, "dasm-run"), (self.stop_button, "dasm-stop"),
                       (self.progress, "dasm-progress-overall"), (self.segment_progress, "dasm-progress-segment"),
                       (self.loss_image, "dasm-loss"), (self.grid_image, "dasm-grid"),
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
        self.thread: threading.Thread | None = None
        self.out_dir: Path = self.spec().folder()
        self._spec = self.spec()
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
        self.controls["method"].observe(lambda _: self._enable_controls(), names="value")
        self._enable_controls()
        self.status.set("Ready: choose the settings and press Run.")

    # -- building ------------------------------------------------------------------------
    @staticmethod
    def _make_controls(**v: object) -> dict[str, widgets.ValueWidget]:
        style = {"description_width": "100px"}
        controls = {
            "dataset": widgets.Dropdown(options=list_datasets(), description="dataset"),
            "method": widgets.Dropdown(options=list(REGISTRY), description="method"),
            "ipc": widgets.IntText(description="IPC", tooltip="images per class"),
            "segments": widgets.IntSlider(min=1, max=max(10, int(v["segments"])), description="segments"),
            "score": widgets.Dropdown(options=list(SCORES), description="score"),
            "policy": widgets.Dropdown(options=list(POLICIES), description="policy"),
            "probe_epochs": widgets.IntText(description="probe epochs", tooltip=_NUMBER_TIP),
            "preset": widgets.Dropdown(options=list(PRESETS), description="preset"),
            "iterations": widgets.IntText(description="iterations", tooltip=_NUMBER_TIP),
            "device": widgets.Text(description="device", tooltip="auto, cpu, cuda, cuda:1, ..."),
            "seed": widgets.IntText(description="seed"),
            "out": widgets.Text(description="out folder"),
            "evaluate": widgets.Checkbox(description="evaluate after the run", indent=False),
            "eval_epochs": widgets.IntText(description="eval epochs", tooltip=_NUMBER_TIP),
        }
        for name, w in controls.items():
            w.value = v[name]
            w.style = style
            w.layout = widgets.Layout(width="290px")
        return controls

    def _layout(self) -> widgets.VBox:
        grid = widgets.GridBox(list(self.controls.values()),
                               layout=widgets.Layout(grid_template_columns="repeat(3, max-content)",
                                                     grid_gap="4px 12px"))
        log = widgets.Accordion(children=[self.log], titles=("run log",))
        box = widgets.VBox([grid, widgets.HBox([self.run_button, self.stop_button]),
                            widgets.VBox([self.progress, self.segment_progress]), self.status.widget,
                            widgets.HBox([self.loss_image, self.grid_image]), self.segment_table, log])
        box.add_class("dasm-distill-panel")
        return box

    def _enable_controls(self) -> None:
        method = self.controls["method"].value
        for name in DASM_ONLY:
            self.controls[name].disabled = method not in method_names(segments=True)
        self.controls["iterations"].disabled = REGISTRY[method].family in ("coreset", "starts")

    # -- the public API ------------------------------------------------------------------
    def spec(self) -> RunSpec:
        """The run the controls describe right now (what Run will start)."""
        return RunSpec(**{name: w.value for name, w in self.controls.items()}, extra=dict(self.overrides))

    def set(self, **values: object) -> "DistillPanel":
        """Set controls by name (``panel.set(method="idc", ipc=2)``); returns the panel."""
        unknown = set(values) - set(self.controls)
        if unknown:
            raise KeyError(f"No control named {sorted(unknown)}; the controls are {', '.join(self.controls)}.")
        for name, value in values.items():
            self.controls[name].value = value
        return self

    @property
    def running(self) -> bool:
        """Whether a run (distillation or its evaluation) is under way."""
        return self.thread is not None and self.thread.is_alive()

    def run(self, block: bool = False) -> threading.Thread:
        """Start the run the controls describe in a background thread (the Run button); return the thread.

        ``block=True`` waits for it to end and re-raises the run's error, if any. Raises RuntimeError
        while another run is under way.
        """
        if self.running:
            raise RuntimeError("A run is under way: stop it or wait for it first.")
        self._reset(self.spec())
        self.thread = threading.Thread(target=self._work, args=(self._spec,), name="dasm-distill-panel", daemon=True)
        self.run_button.disabled, self.stop_button.disabled = True, not self._spec.can_stop
        self.thread.start()
        if block:
            self.thread.join()
            if self.error is not None:
                raise self.error
        return self.thread

    def stop(self) -> None:
        """Ask the distillation to end after its current iteration (the Stop button); what it learned is kept."""
        self._stop.set()
        if self.running and not self.stop_button.disabled:
            self.stop_button.disabled = True
            self.status.set("Stopping after the current iteration ...", "warn")

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the run to end (at most ``timeout`` seconds); return whether it has ended."""
        if self.thread is not None:
            self.thread.join(timeout)
        return not self.running

    # -- the run (in the worker thread) ----------------------------------------------------
    def _reset(self, spec: RunSpec) -> None:
        self._spec, self.out_dir = spec, spec.folder()
        self.result, self.evaluation, self.accuracy, self.error, self.stopped = None, None, None, None, False
        self.history, self.segment_rows = [], []
        self._plan, self._done = (1, 1), 0
        self._stop.clear()
        self._buffer.clear()
        for bar in (self.progress, self.segment_progress):
            bar.value, bar.bar_style = 0, ""
        self.segment_progress.description = "segment"
        self.loss_image.value = self.grid_image.value = b""
        self.segment_table.value = ""
        self._show_log(force=True)
        self.status.set(f"Starting {spec.method} IPC {spec.ipc} on {spec.dataset} ...")

    def _work(self, spec: RunSpec) -> None:
        try:
            with thread_output(self._buffer.write):
                data = self.data = self._dataset(spec.dataset, spec.device)
                self._distill(spec, data)
                if spec.evaluate and not self.stopped:   # a partial set is not evaluated into the run's results
                    self._evaluate(spec, data)
            self._finish(spec)
        except Exception as err:  # shown in the panel and kept in .error; the thread ends here
            self.error = err
            self._buffer.write(traceback.format_exc())
            self.progress.bar_style = "danger"
            self.status.set(f"Error: {type(err).__name__}: {err}", "error")
        finally:
            self._show_log(force=True)
            self.run_button.disabled, self.stop_button.disabled = False, True

    def _dataset(self, name: str, device: str) -> Dataset:
        dev = resolve_device(device)
        key = (canonical_name(name), str(dev))
        if key not in self._datasets:
            self.status.set(f"Loading {key[0]} on {dev} ...")
            self._datasets[key] = load_dataset(key[0], device=dev)
        return self._datasets[key]

    def _distill(self, spec: RunSpec, data: Dataset) -> None:
        self._plan = total, per_segment = spec.plan()
        self.progress.max, self.segment_progress.max = total, per_segment
        self.status.set(f"Distilling {spec.method} IPC {spec.ipc} on {data.name} ({data.device}) "
                        f"into {self.out_dir} ...")
        print(f"{spec.method} IPC {spec.ipc} on {data.name}, {total} iterations, out {self.out_dir}")
        syn = distill_run(data, spec.method, spec.ipc, self.out_dir, preset=spec.preset, seed=spec.seed,
                          progress=TEXT_TQDM, callback=self._on_iteration, should_stop=self._stop.is_set,
                          on_segment=self._on_segment, **spec.overrides())
        self.stop_button.disabled = True
        self.result = syn
        self.stopped = spec.can_stop and self._stop.is_set() and self._done < total
        if syn.meta.get("segment_logs"):  # every segment, also those a resumed run loaded
            self.segment_rows = [dict(r) for r in syn.meta["segment_logs"]]
            self.segment_table.value = segments_html(self.segment_rows)
        if not self.history and (self.out_dir / "history.csv").exists():  # a finished run that was loaded
            self.history = pd.read_csv(self.out_dir / "history.csv").to_dict("records")
        self._show_loss()
        self.grid_image.value = grid_png(syn)  # before the bar completes, so a finished bar means a grid is shown
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
        if self._spec.is_dasm:
            k = int(log.get("segment", 0))
            self._done = min(k * per_segment + step, total)
            joint = log.get("stage") == "joint"
            self.segment_progress.max = total - k * per_segment if joint else per_segment
            self.segment_progress.description = "joint pass" if joint else f"segment {k + 1}/{self._spec.segments}"
            self.segment_progress.value = min(step, self.segment_progress.max)
        else:
            self._done = min(step, total)
            self.segment_progress.value = self._done
        self.progress.value = self._done
        if self._throttle.ready():
            self._show_loss()
            self._show_log()
        if snapshot is not None and self._grid_throttle.ready():
            self.grid_image.value = grid_png(snapshot())  # the images as they change

    def _on_segment(self, log: dict, syn: SyntheticSet) -> None:
        self.segment_rows.append(dict(log))
        self.segment_table.value = segments_html(self.segment_rows)
        self.grid_image.value = grid_png(syn)
        self._show_loss()
        print(_segment_line(log, self._spec.segments))

    def _evaluate(self, spec: RunSpec, data: Dataset) -> None:
        self.status.set(f"Evaluating {self.out_dir} (seed {spec.seed}) ...")
        df = evaluate_run(self.out_dir, data, preset=spec.preset, seeds=[spec.seed],
                          epochs=spec.evaluation_epochs(), progress=TEXT_TQDM)
        self.evaluation = df
        acc = df.loc[df["metric"] == "test_acc", "value"]
        self.accuracy = float(acc.mean()) if len(acc) else None
        if self.accuracy is not None:
            print(f"test accuracy {self.accuracy:.2f}% ({df['protocol'].iloc[0]})")

    def _finish(self, spec: RunSpec) -> None:
        acc = f"; test accuracy {self.accuracy:.1f}%" if self.accuracy is not None else ""
        if self.stopped:
            self.progress.bar_style = "warning"
            self.status.set(f"Stopped after {self._done}/{self._plan[0]} iterations; kept what was learned "
                            f"in {self.out_dir} (partial.pt); Run again to resume", "warn")
        else:
            self.progress.bar_style = "success"
            self.status.set(f"Done: {spec.method} IPC {spec.ipc} on {spec.dataset} saved in {self.out_dir}{acc}",
                            "ok")

    # -- views ----------------------------------------------------------------------------
    def _show_loss(self) -> None:
        if self.history:
            self.loss_image.value = loss_png(list(self.history), self._spec.method,
                                             f"{self._spec.method} IPC {self._spec.ipc}: matching loss")

    def _show_log(self, force: bool = False) -> None:
        version = self._buffer.version
        if force or version != self._shown_log:
            self._shown_log = version
            self.log.outputs = (text_output(self._buffer.text()),)
