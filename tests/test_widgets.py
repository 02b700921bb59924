"""The notebook panels: a run from the Run button to the evaluated set, its folder named by its settings,
settings refused before any data loads, locked controls, Stop and interrupts, errors, and the
comparison views drawn in the background."""

import shutil
import sys
import threading
import time

import pytest

import dasm.widgets.compare_panel as cp
import dasm.widgets.distill_panel as dp
from dasm.runs import distill_run, evaluate_run, full_data_run
from dasm.train import Recipe
from dasm.widgets import ComparePanel, DistillPanel
from dasm.widgets.capture import LogBuffer, thread_output
from dasm.widgets.jobs import LatestJob

PNG = b"\x89PNG"


def _wait_for(condition, timeout: float = 120.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.02)


def _statuses(panel) -> list[str]:
    """Every status text the panel shows from now on."""
    seen = []
    panel.status.widget.observe(lambda _: seen.append(panel.status.text), names="value")
    return seen


@pytest.fixture
def no_loading(monkeypatch):
    """A spy on the panel's data loader: the list of datasets it was asked for."""
    calls = []
    monkeypatch.setattr(dp, "load_dataset", lambda name, **kw: calls.append(name))
    return calls


def test_distill_panel_runs_dasm_from_the_button(tmp_path):
    panel = DistillPanel(method="idc", ipc=10, out=tmp_path / "unused")
    # no broken image before there is one; numbers left to the preset say so instead of "0"
    assert panel.loss_image.layout.display == panel.grid_image.layout.display == "none"
    assert panel.controls["iterations"].value == "" and panel.controls["iterations"].placeholder == "preset: 60"
    # settings changed after construction are the ones the run uses
    panel.set(method="dasm", ipc=2, segments=2, iterations=4, probe_epochs=5, eval_epochs=5, out=str(tmp_path))
    assert panel.controls["iterations"].value == "4" and panel.spec().iterations == 4
    assert panel.run_button.description == "Run" and "dasm-run" in panel.run_button._dom_classes
    statuses = _statuses(panel)
    panel.run_button.click()
    assert all(w.disabled for w in panel.controls.values()) and panel.run_button.disabled
    assert panel.wait(180)

    assert panel.error is None, panel.status.text
    assert panel.out_dir == tmp_path / panel.spec().config().name()
    assert panel.out_dir.name.startswith("digits-dasm-ipc2-seed0-")
    assert (panel.out_dir / "synthetic.pt").exists()
    assert panel.progress.value == panel.progress.max == 4
    assert panel.history and all("loss" in h for h in panel.history)
    assert bytes(panel.grid_image.value).startswith(PNG) and bytes(panel.loss_image.value).startswith(PNG)
    assert panel.loss_image.layout.display is None and panel.grid_image.layout.display is None
    # 2 segments of 1 iteration and the joint pass (the default 40% of the 4 iterations)
    assert len(panel.segment_rows) == 3 and panel.segment_table.value.count("<tr>") == 4
    assert len(panel.result.segments) == 2
    assert panel.accuracy is not None and 0 <= panel.accuracy <= 100
    assert panel.status.text.startswith("Done") and f"{panel.accuracy:.1f}%" in panel.status.text
    # the status named every phase: loading, the probe before segment 2, the joint pass, the evaluation
    said = "\n".join(statuses)
    for phase in ("Loading digits", "segment 1/2", "training the probe for segment 2/2 on the 1 segment(s) so far",
                  "joint pass", "Evaluating seed 0: training a fresh convnet on the set for 5 epochs"):
        assert phase in said, (phase, statuses)
    assert not panel.run_button.disabled and panel.stop_button.disabled
    assert not any(panel.controls[n].disabled for n in ("ipc", "segments", "score", "iterations", "out"))
    assert "test accuracy" in panel.log.outputs[0]["text"]
    assert "application/vnd.jupyter.widget-view+json" in panel._repr_mimebundle_()


def test_every_setting_names_the_run_folder(tmp_path):
    """Changing any control or extra setting gives another folder (so Run starts a new run); device and the
    evaluation's settings are no part of the set, and None keeps the preset's value."""
    panel = DistillPanel(method="dasm", ipc=4, segments=2, out=tmp_path)
    base = panel.spec().folder()
    changes = {"dataset": "fashion-mnist", "method": "dasm-nodifficulty", "ipc": 3, "segments": 3, "score": "el2n",
               "policy": "grow", "probe_epochs": 7, "preset": "paper", "iterations": 9, "seed": 1,
               "out": str(tmp_path / "other")}
    assert set(changes) | {"device", "evaluate", "eval_epochs"} == set(panel.controls)
    for name, value in changes.items():
        before = panel.controls[name].value
        panel.set(**{name: value})
        assert panel.spec().folder() != base, name
        panel.set(**{name: before})
        assert panel.spec().folder() == base, name
    panel.set(device="cpu", evaluate=False, eval_epochs=3)
    assert panel.spec().folder() == base
    panel.set(iterations=None)
    assert panel.spec().iterations is None and panel.spec().folder() == base
    assert DistillPanel(method="dasm", ipc=4, segments=2, out=tmp_path, joint=0.5).spec().folder() != base
    assert str(base) in panel.target.value
    assert "starts a new run" in panel.target.value


@pytest.mark.parametrize("settings, extra, message", [
    ({"method": "random", "ipc": 1000}, {}, "IPC 1000: the smallest class of digits has 139"),
    ({"ipc": 0}, {}, "IPC (images per class) must be a positive integer, got 0"),
    ({"method": "dasm", "ipc": 2, "segments": 5}, {}, "5 segments need at least 5 images per class, but IPC is 2"),
    ({"iterations": "ten"}, {}, "iterations must be a whole number"),
    ({"eval_epochs": 0}, {}, "eval epochs must be at least 1"),
    ({"method": "idc"}, {"lr_imgg": 0.1}, "Unknown setting(s) lr_imgg"),
])
def test_bad_settings_are_refused_before_any_data_loads(tmp_path, no_loading, settings, extra, message):
    panel = DistillPanel(out=tmp_path, **extra).set(**settings)
    assert "Cannot run" in panel.target.value   # said before Run too
    panel.run_button.click()
    assert panel.thread is None and no_loading == []
    assert panel.status.kind == "error" and message in panel.status.text
    assert "\n" not in panel.status.text and "Traceback" not in panel.status.text
    assert not panel.run_button.disabled and not panel.controls["ipc"].disabled
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        panel.run(block=True)   # a blocking run re-raises, so a notebook cell fails loudly
    assert no_loading == [] and not list(tmp_path.iterdir())


def test_stop_keeps_the_set_and_run_resumes_it(tmp_path):
    panel = DistillPanel(method="idc", ipc=2, iterations=2000, out=tmp_path, evaluate=False)
    panel.run_button.click()
    _wait_for(lambda: len(panel.grid_image.value) > 0 or not panel.running)
    assert bytes(panel.grid_image.value).startswith(PNG)  # the grid shows the images while they are learned
    assert all(w.disabled for w in panel.controls.values()) and not panel.stop_button.disabled
    with pytest.raises(RuntimeError, match="locked"):
        panel.set(ipc=3)
    panel.stop_button.click()
    assert panel.wait(60)
    assert panel.error is None, panel.status.text
    assert panel.stopped and 0 < panel.progress.value < 2000
    assert panel.status.text.startswith("Stopped") and "Run again resumes it" in panel.status.text
    assert panel.result is not None and (panel.out_dir / "partial.pt").exists()
    assert (panel.out_dir / "checkpoint.pt").exists() and not (panel.out_dir / "synthetic.pt").exists()
    assert panel.evaluation is None   # a partial set is not evaluated
    assert not panel.controls["ipc"].disabled and not panel.run_button.disabled
    assert "resumes the stopped run" in panel.target.value
    folder, stopped_at = panel.out_dir, panel.progress.value

    panel.run_button.click()   # unchanged settings: the same folder, resumed where it stopped
    _wait_for(lambda: panel.progress.value > stopped_at or not panel.running)
    assert panel.out_dir == folder and panel.resumed_at == stopped_at
    panel.stop()
    assert panel.wait(60) and panel.status.text.startswith("Stopped")


def test_a_finished_run_is_loaded_and_a_resumed_one_completes(tmp_path):
    panel = DistillPanel(method="idc", ipc=1, iterations=12, out=tmp_path, evaluate=False)
    statuses = _statuses(panel)
    panel.run_button.click()
    _wait_for(lambda: panel.progress.value >= 1 or not panel.running)
    panel.stop()
    assert panel.wait(60) and panel.stopped
    folder = panel.out_dir
    panel.run(block=True)   # the same settings: resumed from its checkpoint and finished
    assert panel.out_dir == folder and (folder / "synthetic.pt").exists()
    assert panel.status.text.startswith("Done") and "resumed and finished" in panel.status.text
    assert any(s.startswith("Resuming idc IPC 1") for s in statuses)
    assert panel.progress.value == 12
    panel.run(block=True)
    assert panel.out_dir == folder and "loaded the finished run" in panel.status.text


def test_an_interrupt_of_a_blocking_run_stops_the_worker(tmp_path, monkeypatch):
    panel = DistillPanel(method="idc", ipc=2, iterations=2000, out=tmp_path)
    wait, interrupted = panel.wait, []

    def wait_until_interrupted(timeout=None):   # Ctrl-C / the kernel's interrupt while the cell waits
        if not interrupted:
            interrupted.append(True)
            _wait_for(lambda: panel.progress.value > 0 or not panel.running)
            raise KeyboardInterrupt
        return wait(timeout)

    monkeypatch.setattr(panel, "wait", wait_until_interrupted)
    with pytest.raises(KeyboardInterrupt):
        panel.run(block=True)
    worker = panel.thread
    try:
        assert not worker.is_alive()                      # never left running behind the interrupted cell
        assert panel.stopped and panel.status.text.startswith("Stopped")
        assert (panel.out_dir / "partial.pt").exists() and panel.evaluation is None
        assert not panel.run_button.disabled and not panel.controls["ipc"].disabled
    finally:
        panel.stop()
        worker.join(60)


def test_an_error_in_the_run_is_shown(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(dp, "distill_run", broken)
    panel = DistillPanel(method="random", ipc=2, out=tmp_path)
    with pytest.raises(RuntimeError, match="disk is full"):
        panel.run(block=True)  # a blocking run re-raises, so a notebook cell fails loudly
    assert isinstance(panel.error, RuntimeError)
    assert panel.status.kind == "error" and "disk is full" in panel.status.text
    assert "disk is full" in panel.status.widget.value and "Traceback" in panel.log.outputs[0]["text"]
    assert not panel.run_button.disabled and panel.result is None and not panel.controls["ipc"].disabled


def test_distill_panel_shows_the_joint_pass(tmp_path):
    panel = DistillPanel(method="dasm", ipc=2, segments=2, iterations=6, probe_epochs=2, out=tmp_path,
                         evaluate=False, joint=0.5)   # 2 segments x 1 iteration + a joint pass of 3 (of 6)
    panel.run_button.click()
    assert panel.wait(180)
    assert panel.error is None, panel.status.text
    assert panel.progress.value == panel.progress.max == 5
    assert panel.segment_progress.description == "joint pass"
    assert panel.segment_progress.value == panel.segment_progress.max == 3
    assert [r["stage"] for r in panel.segment_rows] == ["segment", "segment", "joint"]
    assert "<td>joint</td>" in panel.segment_table.value


# -- ComparePanel ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compared(tmp_path_factory, digits):
    """Random runs at IPC 1 and 3 (evaluated) and a full-data run (1 epoch) in one folder."""
    root = tmp_path_factory.mktemp("compare")
    for ipc in (1, 3):
        run = root / f"digits-random-ipc{ipc}-seed0-x"
        distill_run(digits, "random", ipc, run, progress=False)
        evaluate_run(run, digits, seeds=[0], epochs=5, progress=False)
    (run / "joint").mkdir()   # a set saved inside a run (DASM's joint pass) is no run of its own
    shutil.copy(run / "synthetic.pt", run / "joint" / "synthetic.pt")
    full_data_run(digits, root / "full", recipe=Recipe(epochs=1), progress=False)
    return root


def test_compare_panel_draws_saturation_with_the_full_data_line(compared):
    panel = ComparePanel([compared], reference_epochs=1, reference_width=8, set_epochs=5)
    assert panel.wait(60)
    assert set(panel.runs) == {"digits-random-ipc1-seed0", "digits-random-ipc3-seed0"}   # dataset, method, IPC, seed
    assert set(panel.runs_box.value) == set(panel.runs)          # everything selected at first
    assert panel.error is None and "image/png" in panel.output.outputs[0]["data"]
    assert list(panel.table["method"]) == ["random", "random", "full"] and panel.table["is_full"].iloc[-1]
    assert "full-data line: 1 result(s)" in panel.status.text

    panel.full_box.value = False
    assert panel.wait(60) and not panel.table["is_full"].any()
    panel.view_box.value = "results table"
    assert panel.wait(60)
    html = "".join(o["data"]["text/html"] for o in panel.output.outputs)
    assert "digits-random-ipc1-seed0" in html and list(panel.table["ipc"]) == [1, 3]


def test_compare_panel_draws_in_the_background_and_never_shows_a_stale_figure(compared, monkeypatch):
    drawn, release = [], threading.Event()
    plot = cp.plot_saturation

    def slow_plot(table, **kw):
        drawn.append(sorted(table["ipc"]))
        release.wait(10)
        return plot(table, **kw)

    monkeypatch.setattr(cp, "plot_saturation", slow_plot)
    panel = ComparePanel([compared], full_data=False)
    release.set()
    assert panel.wait(60) and drawn == [[1, 3]]
    release.clear()
    t0 = time.monotonic()
    panel.select("digits-random-ipc1-seed0")                  # the change handler computes nothing ...
    assert time.monotonic() - t0 < 2 and panel.output.outputs == ()   # ... and the old figure is gone at once
    assert "Drawing the saturation curve of 1 run(s)" in panel.status.text
    release.set()
    assert panel.wait(60) and drawn == [[1, 3], [1]] and "image/png" in panel.output.outputs[0]["data"]
    panel.select()                                            # back to both: drawn before, so from the cache
    assert panel.wait(60) and drawn == [[1, 3], [1]] and list(panel.table["ipc"]) == [1, 3]


def test_compare_panel_histograms_wait_for_their_button_then_are_cached(compared, monkeypatch):
    widths, reference_network = [], cp.reference_network
    monkeypatch.setattr(cp, "reference_network",
                        lambda *a, **kw: widths.append(kw.get("width")) or reference_network(*a, **kw))
    trained, train_on_set = [], cp.train_on_set
    monkeypatch.setattr(cp, "train_on_set", lambda data, x, y, **kw: trained.append(len(y)) or train_on_set(data, x, y, **kw))
    panel = ComparePanel([compared], reference_epochs=1, reference_width=8, set_epochs=5)
    assert panel.wait(60)
    panel.select("digits-random-ipc1-seed0")
    panel.view_box.value = "difficulty histograms"
    assert panel.wait(60) and panel.output.outputs == () and "Press 'Compute histograms'" in panel.status.text
    panel.histogram_button.click()
    assert panel.wait(120)
    assert panel.error is None, panel.status.text
    assert panel.progress.value == panel.progress.max == 2
    assert "image/png" in panel.output.outputs[0]["data"]
    assert widths == [8]                                          # the reference network takes the panel's width
    panel.view_box.value = "saturation curve"
    panel.view_box.value = "difficulty histograms"               # drawn before: shown again, nothing retrained
    assert panel.wait(60) and "image/png" in panel.output.outputs[0]["data"] and widths == [8]
    panel.select()                                                # both runs: only IPC 3's network is new
    assert panel.wait(60) and panel.output.outputs == () and "(1 network(s) still to train)" in panel.status.text
    panel.histogram_button.click()
    assert panel.wait(120) and "image/png" in panel.output.outputs[0]["data"]
    assert widths == [8] and trained == [10, 30]                  # each set's network trained once


def test_compare_panel_without_runs_says_so(tmp_path):
    panel = ComparePanel(tmp_path)
    assert panel.wait(30)
    assert panel.runs == {} and "No synthetic.pt" in panel.status.text


def test_latest_job_runs_only_the_last_of_a_burst():
    jobs, ran, started, gate = LatestJob(), [], threading.Event(), threading.Event()
    jobs.submit(lambda g: started.set() or gate.wait(10) and ran.append(g))
    assert started.wait(10)                 # the first job runs; the next ones wait, each replacing the last
    for _ in range(5):
        last = jobs.submit(lambda g: ran.append(g))
    gate.set()
    assert jobs.wait(10) and ran == [1, last] and jobs.is_current(last)


def test_log_buffer_and_thread_capture():
    buf = LogBuffer(max_lines=3)
    buf.write("a\nbar 1%\rbar 50%")
    buf.write("\rbar 100%\nx\ny\n")
    assert buf.text() == "x\ny\n"  # the last 3 lines
    buf.clear()
    buf.write("bar 1%\rbar 100%\ndone")
    assert buf.text() == "bar 100%\ndone"

    caught = LogBuffer()
    original = sys.stdout

    def work():
        with thread_output(caught.write):
            print("from the worker")

    t = threading.Thread(target=work)
    t.start()
    t.join()
    assert caught.text().strip() == "from the worker"
    assert sys.stdout is original
