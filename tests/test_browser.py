"""A real-browser test of the notebook front door: what a user does with the panels.

`jupyter lab` runs on loopback with a random token and its own settings; Chromium (Debian's
`chromium` package, driven by Playwright through `executable_path`: no browser download) opens a
copy of `notebooks/02_sequential_distillation.ipynb` whose parameters cell is set small with
AUTORUN off. The test runs the cells up to the DistillPanel and then uses the panel:

1. Run: the status says "Done", the overall bar is full, the image grid shows an image;
2. another score, Run: the panel names another folder and that new run completes;
3. more iterations, Run, Stop mid-run: "Stopped", what was learned kept, the panel offers to resume;
4. Run again: the stopped run resumes and completes;

with no broken image on screen at any point. Then it runs the rest of the notebook (no cell may
fail), whose last cell opens a ComparePanel over the runs, and checks its figure is drawn. The
screenshot is saved to `tests/artifacts/browser_02.png`; on failure a screenshot and the server
log go there.

Skipped when no Chromium binary (or `$DASM_CHROMIUM`) or no Playwright is installed;
`.ci/run` installs Chromium."""

from __future__ import annotations

import ast
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "02_sequential_distillation.ipynb"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
SCREENSHOT = ARTIFACTS / "browser_02.png"

# Small enough to finish in well under a minute on two busy cores.
PARAMETERS = {
    "DATASET": "digits",
    "IPC": 2,
    "SEGMENTS": 2,
    "ITERATIONS": 3,
    "EVAL_EPOCHS": 3,
    "PROBE_EPOCHS": 3,
    "DEVICE": "cpu",
    "AUTORUN": False,  # the test clicks Run itself
}

SERVER_START_TIMEOUT = 90  # s, jupyter lab on two busy cores
PAGE_TIMEOUT = 90_000  # ms, lab front end, kernel start, run-all
RUN_TIMEOUT = 300_000  # ms, the distillation after clicking Run
STOP_ITERATIONS = 60  # the run that is stopped mid-way: long enough to press Stop in it

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def find_chromium() -> str | None:
    """The system Chromium binary, or None."""
    env = os.environ.get("DASM_CHROMIUM")
    if env:
        return env if Path(env).exists() else shutil.which(env)
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


# --------------------------------------------------------------------------- notebook


def prepare_notebook(src: Path, dst_dir: Path, overrides: dict) -> Path:
    """Copy `src` into `dst_dir` with cleared outputs and its `parameters` cell set to `overrides`.

    Each top-level assignment to an overridden name is replaced in place (so later lines that
    derive from it see the new value); names the cell does not assign are appended.
    """
    nb = json.loads(src.read_text(encoding="utf-8"))
    cells = nb["cells"]
    params = [c for c in cells if c.get("cell_type") == "code" and "parameters" in c.get("metadata", {}).get("tags", [])]
    assert params, f"{src.name} has no code cell tagged 'parameters'"
    cell = params[0]
    source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
    lines = source.splitlines()
    tree = ast.parse(source)
    done = set()
    # Replace bottom-up so earlier line numbers stay valid.
    for node in sorted(tree.body, key=lambda n: n.lineno, reverse=True):
        targets = []
        if isinstance(node, ast.Assign):
            targets = [t.id for t in node.targets if isinstance(t, ast.Name)]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            targets = [node.target.id]
        names = [t for t in targets if t in overrides]
        if not names:
            continue
        name = names[0]
        tail = lines[node.end_lineno - 1][node.end_col_offset :]
        comment = "  #" + tail.split("#", 1)[1] if "#" in tail else ""
        lines[node.lineno - 1 : node.end_lineno] = [f"{name} = {overrides[name]!r}{comment}"]
        done.add(name)
    for name, value in overrides.items():
        if name not in done:
            lines.append(f"{name} = {value!r}  # set by tests/test_browser.py")
    cell["source"] = "\n".join(lines) + "\n"
    for c in cells:
        if c.get("cell_type") == "code":
            c["outputs"] = []
            c["execution_count"] = None
    meta = nb.setdefault("metadata", {})
    # The venv's own kernel; no pairing (the copy lives alone in a temporary folder).
    meta["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    meta.pop("jupytext", None)
    meta.pop("widgets", None)
    dst = dst_dir / src.name
    dst.write_text(json.dumps(nb, indent=1), encoding="utf-8")
    return dst


# --------------------------------------------------------------------------- server


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def lab_settings(settings_dir: Path) -> None:
    """User settings: no news/update toasts, no virtual scrolling of cells, no restored layout."""
    files = {
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
            "fetchNews": "false",
            "checkForUpdates": False,
        },
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
        "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    }
    for rel, content in files.items():
        path = settings_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(content), encoding="utf-8")


class LabServer:
    def __init__(self, root_dir: Path, work: Path):
        self.root_dir = root_dir
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = work / "jupyter-server.log"
        home = work / "jupyter"
        settings = home / "lab-user-settings"
        lab_settings(settings)
        self.env = dict(os.environ)
        self.env.update(
            MPLBACKEND="Agg",
            # The kernel's torch takes one thread: chromium and the lab server need the other core, and
            # a two-thread torch whose second thread is descheduled waits for it at every operation.
            OMP_NUM_THREADS="1",
            NUMBA_CACHE_DIR=os.environ.get("NUMBA_CACHE_DIR", str(ROOT / "data" / ".numba-cache")),
            # Isolated user dirs; the venv's share/jupyter (kernelspec python3, the ipywidgets
            # lab extension) is still on the path through sys.prefix.
            JUPYTER_CONFIG_DIR=str(home / "config"),
            JUPYTER_DATA_DIR=str(home / "data"),
            JUPYTER_RUNTIME_DIR=str(home / "runtime"),
            JUPYTERLAB_SETTINGS_DIR=str(settings),
            JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"),
            JUPYTER_PLATFORM_DIRS="1",
            IPYTHONDIR=str(home / "ipython"),
            PYTHONPATH=os.pathsep.join(p for p in [str(ROOT), os.environ.get("PYTHONPATH", "")] if p),
        )
        self.env.pop("JUPYTER_PATH", None)
        self.env.pop("JUPYTER_CONFIG_PATH", None)
        self.cmd = [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={root_dir}",
            f"--LabApp.user_settings_dir={settings}",
            f"--LabApp.workspaces_dir={home / 'workspaces'}",
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.handlers.announcements.NeverCheckForUpdate",
            "--ServerApp.open_browser=False",
            "--ServerApp.allow_root=True",  # CI runs as root
        ]
        self.proc: subprocess.Popen | None = None
        self._log = None

    def api(self, path: str, method: str = "GET", timeout: float = 5):
        sep = "&" if "?" in path else "?"
        req = urllib.request.Request(f"{self.url}{path}{sep}token={self.token}", method=method)
        with urllib.request.urlopen(req, timeout=timeout) as r:
            body = r.read()
        return json.loads(body) if body else None

    def start(self) -> None:
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            self.cmd,
            cwd=self.root_dir,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with {self.proc.returncode}:\n{self.log()}")
            try:
                self.api("/api/status", timeout=2)
                return
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.5)
        raise RuntimeError(f"jupyter lab did not answer in {SERVER_START_TIMEOUT} s:\n{self.log()}")

    def kernels(self) -> list:
        return self.api("/api/kernels")

    def log(self, tail: int = 8000) -> str:
        if self._log and not self._log.closed:
            self._log.flush()
        try:
            return self.log_path.read_text(errors="replace")[-tail:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:  # shuts kernels down too
            self.api("/api/shutdown", method="POST", timeout=10)
            self.proc.wait(timeout=20)
        except Exception:
            pass
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        if self._log:
            self._log.close()


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def chromium():
    path = find_chromium()
    if path is None:
        pytest.skip("no Chromium binary found (apt-get install -y chromium chromium-driver)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("playwright is not installed (pip install -e '.[dev]')")
    return path


@pytest.fixture(scope="module")
def lab_root(tmp_path_factory):
    if not NOTEBOOK.exists():
        pytest.skip(f"{NOTEBOOK.relative_to(ROOT)} does not exist yet")
    root = tmp_path_factory.mktemp("lab-root")
    overrides = dict(PARAMETERS, OUT=str(root / "runs"))
    prepare_notebook(NOTEBOOK, root, overrides)
    return root


@pytest.fixture(scope="module")
def lab(chromium, lab_root, tmp_path_factory):
    server = LabServer(lab_root, tmp_path_factory.mktemp("lab-home"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser(chromium):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=chromium,
            headless=True,
            args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
        )
        try:
            yield b
        finally:
            b.close()


# --------------------------------------------------------------------------- browser steps


class Failure(AssertionError):
    pass


def run_menu(page, item: str) -> None:
    """Menu Run > `item` (window.jupyterapp is not exposed by default, the menu is)."""
    page.locator("#jp-MainMenu, .lm-MenuBar").get_by_role("menuitem", name="Run", exact=True).first.click()
    page.get_by_role("menuitem", name=item, exact=True).first.click()


def select_cell(page, index: int) -> None:
    """Select cell `index` (command mode) by clicking its prompt area."""
    cell = page.locator(".jp-NotebookPanel .jp-Cell").nth(index)
    cell.scroll_into_view_if_needed()
    cell.locator(".jp-InputPrompt").first.click()
    page.wait_for_function(
        "i => { const c = document.querySelectorAll('.jp-NotebookPanel .jp-Cell')[i]; return c && c.classList.contains('jp-mod-active'); }",
        arg=index,
    )


def notebook_state(page) -> dict:
    """Execution prompts of the code cells and the tracebacks shown in outputs."""
    return page.evaluate(
        """() => {
        const cells = Array.from(document.querySelectorAll('.jp-NotebookPanel .jp-CodeCell'));
        const prompts = cells.map(c => (c.querySelector('.jp-InputArea-prompt') || {}).innerText || '');
        const tracebacks = Array.from(document.querySelectorAll('.jp-NotebookPanel .jp-OutputArea-output'))
            .map(e => e.innerText).filter(t => t.includes('Traceback (most recent call last)'))
            .map(t => t.slice(-3000));
        return {prompts, tracebacks};
    }"""
    )


def wait_cells_executed(page, lab: LabServer, timeout: float) -> dict:
    """Wait until every code cell has an execution count and the kernel is idle (or a cell failed)."""
    deadline = time.monotonic() + timeout
    state = notebook_state(page)
    while time.monotonic() < deadline:
        state = notebook_state(page)
        if state["tracebacks"]:
            raise Failure("a cell failed:\n" + "\n---\n".join(state["tracebacks"]))
        done = all(re.search(r"\[\d+\]", p) for p in state["prompts"])
        if done and lab.kernels()[0].get("execution_state") == "idle":
            return state
        page.wait_for_timeout(500)
    raise Failure(f"cells not all executed after {timeout:.0f} s: prompts {state['prompts']}")


def wait_kernel_idle(lab: LabServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    state = None
    while time.monotonic() < deadline:
        kernels = lab.kernels()
        if kernels:
            state = kernels[0].get("execution_state")
            if state == "idle":
                return
        time.sleep(0.5)
    raise Failure(f"kernel not idle after {timeout:.0f} s (state: {state}, kernels: {lab.kernels()})")


def read_panel(page) -> dict:
    """What the DistillPanel shows now: status, the line saying what Run will do, progress-bar width, images."""
    return page.evaluate(
        """() => {
        const panel = document.querySelector('.jp-OutputArea-output .dasm-distill-panel');
        if (!panel) return {status: null, target: null, progress: null, images: []};
        const q = s => panel.querySelector(s);
        const status = q('.dasm-status');
        const target = q('.dasm-target');
        const prog = q('.dasm-progress-overall');
        let bar = prog && (prog.querySelector('.progress-bar') || prog.querySelector('[class*=progress-bar]'));
        let width = null;
        if (bar) {
            const outer = bar.parentElement.getBoundingClientRect();
            const inner = bar.getBoundingClientRect();
            width = {style: bar.style.width, ratio: outer.width ? inner.width / outer.width : null};
        }
        const imgs = Array.from(panel.querySelectorAll('img'));
        return {
            status: status ? status.innerText.trim() : null,
            target: target ? target.innerText.trim() : null,
            progress: width,
            images: imgs.map(i => ({grid: i.classList.contains('dasm-grid') || !!i.closest('.dasm-grid'),
                                     src: (i.getAttribute('src') || '').slice(0, 30),
                                     w: i.naturalWidth, h: i.naturalHeight, complete: i.complete,
                                     visible: i.offsetParent !== null})),
        };
    }"""
    )


def progress_ratio(state: dict) -> float:
    prog = state.get("progress") or {}
    style = prog.get("style", "").strip()
    if style.endswith("%"):
        return float(style[:-1]) / 100
    return prog.get("ratio") or 0.0


def panel_finished(state: dict) -> bool:
    """Done, a full overall bar and a grid image drawn."""
    image = any(i["grid"] and i["src"].startswith(("data:image", "blob:")) and i["w"] > 0 for i in state["images"])
    return (state.get("status") or "").startswith("Done") and progress_ratio(state) >= 0.99 and image


def broken_images(state: dict) -> list:
    """Images on screen whose loading has ended with nothing to draw (the broken-image placeholder).

    An image the panel has just redrawn (the loss curve, every few iterations) is still decoding its new
    picture for a moment: ``complete`` is false then, and that is not a broken image."""
    return [i for i in state["images"] if i["visible"] and i.get("complete", True) and i["w"] == 0]


def target_folder(state: dict) -> str:
    """The run folder the panel's 'Run starts/resumes/loads ... in <folder>' line names."""
    return (state.get("target") or "").rsplit(" in ", 1)[-1]


def wait_panel(page, done, timeout: float, what: str, poll_ms: int = 500) -> dict:
    """Poll the panel until ``done(state)``; a failure status fails at once, a broken image once it is
    still broken at the next poll."""
    deadline = time.monotonic() + timeout
    state, seen_broken = read_panel(page), set()
    while time.monotonic() < deadline:
        state = read_panel(page)
        if done(state):
            return state
        if (state["status"] or "").lower().startswith(("error", "not started")):
            raise Failure(f"{what}: the panel reports a failure: {state}")
        # an image swapped for a new one in the instant of reading can look empty once; the same picture
        # still empty at the next poll is a broken image
        broken = {i["src"] for i in broken_images(state)}
        if broken & seen_broken:
            raise Failure(f"{what}: a broken image is shown: {state}")
        seen_broken = broken
        page.wait_for_timeout(poll_ms)
    raise Failure(f"{what}: not reached in {timeout:.0f} s; last state: {state}")


def panel_cell_index(notebook: Path) -> int | None:
    """Index (among all cells) of the code cell that builds the DistillPanel, if any."""
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    for i, cell in enumerate(nb["cells"]):
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        if cell.get("cell_type") == "code" and "DistillPanel(" in source:
            return i
    return None


def panel_locator(page, selector: str):
    return page.locator(f".jp-OutputArea-output .dasm-distill-panel {selector}").first


def run_and_finish(page, what: str, extra=lambda s: True) -> dict:
    """Press Run and wait for 'Done' naming the folder the panel said it would use."""
    folder = target_folder(read_panel(page))
    panel_locator(page, ".dasm-run").click()
    return wait_panel(page, lambda s: panel_finished(s) and folder in s["status"] and extra(s),
                      RUN_TIMEOUT / 1000, what)


def use_the_panel(page) -> dict:
    """What a user does with the panel after its first run: change a setting and Run (a new run), raise
    the iterations and Run, Stop it mid-run (kept), Run again (resumed and finished). Returns the steps."""
    steps = {"first": run_and_finish(page, "the first run")}
    first = target_folder(steps["first"])
    panel_locator(page, ".dasm-control-score select").select_option("el2n")
    changed = wait_panel(page, lambda s: "starts a new run" in (s["target"] or ""), 30, "changing the score")
    if target_folder(changed) == first:
        raise Failure(f"a changed score names the same folder: {changed}")
    steps["changed"] = run_and_finish(page, "the run with another score")

    box = panel_locator(page, ".dasm-control-iterations input")
    box.fill(str(STOP_ITERATIONS))
    box.press("Tab")
    wait_panel(page, lambda s: "starts a new run" in (s["target"] or ""), 30, "raising the iterations")
    panel_locator(page, ".dasm-run").click()
    wait_panel(page, lambda s: 0 < progress_ratio(s) < 0.5 and (s["status"] or "").startswith("Distilling"),
               RUN_TIMEOUT / 1000, "the long run starting", poll_ms=150)
    panel_locator(page, ".dasm-stop").click()
    steps["stopped"] = wait_panel(page, lambda s: (s["status"] or "").startswith("Stopped")
                                  and "resumes the stopped run" in (s["target"] or ""), 120, "Stop")
    if "Run again resumes it" not in steps["stopped"]["status"] or progress_ratio(steps["stopped"]) >= 1:
        raise Failure(f"Stop did not keep a partial run: {steps['stopped']}")
    steps["resumed"] = run_and_finish(page, "resuming the stopped run",
                                      lambda s: "resumed and finished" in s["status"])
    return steps


def drive_notebook(page, lab: LabServer, notebook: Path) -> dict:
    """Open the notebook, run it up to the panel, use the panel (:func:`use_the_panel`), run the rest
    and check the ComparePanel's figure; return the panel's states at each step.

    With AUTORUN off the cells after the panel read the finished run (`panel.wait()` returns at
    once when no run was started), so the notebook runs in two parts: everything up to the
    panel, the clicks and the waits, then everything below — all cells in the end.
    """
    page.set_default_timeout(PAGE_TIMEOUT)
    page.goto(f"{lab.url}/lab/tree/{notebook.name}?token={lab.token}", wait_until="domcontentloaded")
    # The notebook panel and its first cell are on screen, the kernel is up.
    page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for(state="visible")
    wait_kernel_idle(lab, PAGE_TIMEOUT / 1000)
    n_cells = len(json.loads(notebook.read_text(encoding="utf-8"))["cells"])
    split = panel_cell_index(notebook)
    if split is None or split + 1 >= n_cells:
        raise Failure(f"{notebook.name} has no cell after its DistillPanel cell")
    split += 1
    select_cell(page, split)
    run_menu(page, "Run All Above Selected Cell")
    run = page.locator(".jp-OutputArea-output .dasm-run")
    run.first.wait_for(state="visible")
    wait_kernel_idle(lab, PAGE_TIMEOUT / 1000)  # the cells up to the panel have finished
    if notebook_state(page)["tracebacks"]:
        raise Failure("a cell failed before the panel ran:\n" + "\n---\n".join(notebook_state(page)["tracebacks"]))
    run.first.scroll_into_view_if_needed()
    steps = use_the_panel(page)
    select_cell(page, split)
    run_menu(page, "Run Selected Cell and All Below")
    wait_cells_executed(page, lab, PAGE_TIMEOUT / 1000)
    figure = page.locator(".jp-OutputArea-output .dasm-compare-output img").first
    figure.wait_for(state="visible")
    size = figure.evaluate("i => [i.naturalWidth, i.naturalHeight]")
    if not size[0] or not size[1]:
        raise Failure(f"the ComparePanel's figure is empty: {size}")
    steps["compare"] = {"figure": size, "status": page.locator(".dasm-compare-panel .dasm-status").first.inner_text()}
    # Frame the whole panel for the screenshot: left sidebar closed, panel at the top.
    page.keyboard.press("Control+b")
    page.evaluate("() => document.querySelector('.jp-OutputArea-output .dasm-run').closest('.jp-Cell').scrollIntoView({block: 'start'})")
    page.wait_for_timeout(500)
    return steps


def test_notebook_02_runs_in_the_browser(lab, browser, lab_root):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    failure_shot = ARTIFACTS / "browser_02_failure.png"
    failure_log = ARTIFACTS / "browser_02_server.log"
    for stale in (SCREENSHOT, failure_shot, failure_log):
        stale.unlink(missing_ok=True)
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    console = []
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None)
    t0 = time.monotonic()
    error = None
    try:
        steps = drive_notebook(page, lab, lab_root / NOTEBOOK.name)
    except Exception as exc:  # keep the evidence, then fail outside the handler
        error = f"{type(exc).__name__}: {exc}"
    if error is not None:
        try:
            page.screenshot(path=str(failure_shot), full_page=True)
            shot = str(failure_shot)
        except Exception as exc:  # the page may be gone
            shot = f"(no screenshot: {exc})"
        failure_log.write_text(lab.log(tail=1_000_000), encoding="utf-8")
        context.close()
        pytest.fail(
            f"browser run failed after {time.monotonic() - t0:.0f} s: {error}\n"
            f"screenshot: {shot}\nserver log: {failure_log}\n"
            f"--- server log tail ---\n{lab.log(tail=4000)}\n"
            "--- browser console (errors, warnings) ---\n" + "\n".join(console[-20:]),
            pytrace=False,
        )
    page.screenshot(path=str(SCREENSHOT))
    context.close()
    print(f"\nscreenshot: {SCREENSHOT} ({time.monotonic() - t0:.0f} s in the browser)")
    for step, state in steps.items():
        print(f"{step}: {state.get('status')}")
    assert SCREENSHOT.stat().st_size > 0
