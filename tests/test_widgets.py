"""The notebook panels: a run from the Run button to the evaluated set, Stop, errors, and the comparison views."""

import sys
import threading
import time

import pytest

from dasm.runs import distill_run, evaluate_run
from dasm.widgets import ComparePanel, DistillPanel
from dasm.widgets.capture import LogBuffer, thread_output

PNG = b"\x89PNG"


def _wait_for(condition, timeout: float = 120.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.02)


def test_distill_panel_runs_dasm_from_the_button(tmp_path):
    panel = DistillPanel(method="idc", ipc=10, out=tmp_path / "unused")
    # settings changed after construction are the ones the run uses
    panel.set(method="dasm", ipc=2, segments=2, iterations=4, probe_epochs=5, eval_epochs=5, out=str(tmp_path))
    assert panel.run_button.description == "Run" and "dasm-run" in panel.run_button._dom_classes
    panel.run_button.click()
    assert panel.wait(180)

    assert panel.error is None, panel.status.text
    assert panel.out_dir == tmp_path / panel.spec().config().name()
    assert panel.out_dir.name.startswith("digits-dasm-ipc2-seed0-")
    assert (panel.out_dir / "synthetic.pt").exists()
    assert panel.progress.value == panel.progress.max == 4
    assert panel.history and all("loss" in h for h in panel.history)
    assert bytes(panel.grid_image.value).startswith(PNG) and bytes(panel.loss_image.value).startswith(PNG)
    # 2 segments of 1 iteration and the joint pass (the default 40% of the 4 iterations)
    assert len(panel.segment_rows) == 3 and panel.segment_table.value.count("<tr>") == 4
    assert len(panel.result.segments) == 2
    assert panel.accuracy is not None and 0 <= panel.accuracy <= 100
    assert panel.status.text.startswith("Done") and f"{panel.accuracy:.1f}%" in panel.status.text
    assert not panel.run_button.disabled and panel.stop_button.disabled
    assert "test accuracy" in panel.log.outputs[0]["text"]
    assert "application/vnd.jupyter.widget-view+json" in panel._repr_mimebundle_()


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


def test_stop_ends_the_run_and_keeps_the_set(tmp_path):
    panel = DistillPanel(method="idc", ipc=2, iterations=2000, out=tmp_path, evaluate=False)
    panel.run_button.click()
    _wait_for(lambda: len(panel.grid_image.value) > 0 or not panel.running)
    assert bytes(panel.grid_image.value).startswith(PNG)  # the grid shows the images while they are learned
    panel.stop_button.click()
    assert panel.wait(60)
    assert panel.error is None, panel.status.text
    assert panel.stopped and panel.progress.value < 100
    assert panel.status.text.startswith("Stopped")
    assert panel.result is not None and (panel.out_dir / "partial.pt").exists()
    assert (panel.out_dir / "checkpoint.pt").exists() and not (panel.out_dir / "synthetic.pt").exists()
    assert panel.evaluation is None   # a partial set is not evaluated


def test_an_error_in_the_run_is_shown(tmp_path):
    panel = DistillPanel(method="random", ipc=1000, out=tmp_path)
    with pytest.raises(ValueError, match="IPC 1000"):
        panel.run(block=True)  # a blocking run re-raises, so a notebook cell fails loudly
    assert isinstance(panel.error, ValueError)
    assert panel.status.kind == "error" and "IPC 1000" in panel.status.text
    assert "IPC 1000" in panel.status.widget.value
    assert not panel.run_button.disabled and panel.result is None


def test_compare_panel_draws_saturation_table_and_histograms(tmp_path, digits, monkeypatch):
    import dasm.widgets.compare_panel as cp

    widths, reference_network = [], cp.reference_network
    monkeypatch.setattr(cp, "reference_network",
                        lambda *a, **kw: widths.append(kw.get("width")) or reference_network(*a, **kw))
    for ipc in (1, 3):
        run = tmp_path / f"random-{ipc}"
        distill_run(digits, "random", ipc, run, progress=False)
        evaluate_run(run, digits, seeds=[0], epochs=5, progress=False)
    panel = ComparePanel([tmp_path], reference_epochs=1, reference_width=8, set_epochs=5)
    assert set(panel.runs) == {"random-ipc1", "random-ipc3"}
    assert set(panel.runs_box.value) == set(panel.runs)          # everything selected at first
    assert panel.error is None and "image/png" in panel.output.outputs[0]["data"]

    panel.view_box.value = "results table"
    html = "".join(o["data"]["text/html"] for o in panel.output.outputs)
    assert "random" in html and list(panel.table["ipc"]) == [1, 3]

    panel.select("random-ipc1")
    panel.histogram_button.click()
    assert panel.error is None, panel.status.text
    assert panel.progress.value == panel.progress.max == 2
    assert "image/png" in panel.output.outputs[0]["data"]
    assert widths == [8]                                          # the reference network takes the panel's width


def test_compare_panel_without_runs_says_so(tmp_path):
    panel = ComparePanel(tmp_path)
    assert panel.runs == {} and "No synthetic.pt" in panel.status.text


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
