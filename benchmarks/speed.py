"""Speed of the distillation engine's inner pieces, against this machine's own matmul speed.

What is timed (Fashion-MNIST shapes, 1x28x28, 10 classes; random tensors, the values do not
matter for speed), as the median of ``--repeats`` runs after warm-up, in one process:

  match        one gradient-matching step for all 10 classes: real class gradients (64 images
               a class, IDC's batch_real), synthetic class gradients with create_graph, the
               distance and its backward to the synthetic pixels; ``path`` says how the
               per-class gradients are taken (dasm.matching.GRAD_PATHS: ``stream`` one class
               at a time through to its backward, ``loop`` over classes then one backward, or
               one ``vmap`` pass); the engine's default per device is the fastest here.
  match/class  the same for one class (``loop``), i.e. what a per-class engine pays per class.
  net-update   one SGD step of the matching network on 128 real images (IDC's batch_net).
  eval-epoch   one epoch of the evaluation recipe (DSA, batch 256) on the IPC x 10 synthetic images.

For each, the FLOPs it does (``torch.utils.flop_counter``: matmuls and convolutions, forward
and backward) and so the achieved FLOP/s, next to the dense float32 matmul FLOP/s of the same
device measured in the same run (``frac_matmul``): how close the engine is to the hardware.
Peak memory: ``torch.cuda.max_memory_allocated`` on CUDA; on Linux CPUs the growth of the
process's peak resident set (``VmHWM``, reset through ``/proc/self/clear_refs``).

    python benchmarks/speed.py                       # CPU: ipc 10, 50 x width 32, 64, 128
    python benchmarks/speed.py --device cuda         # the same on a GPU
    python benchmarks/speed.py --ipcs 10 --widths 64 --repeats 3   # quick look

Writes benchmarks/results/speed_<device>.csv and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import platform
import statistics
import time
from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.report import to_markdown, write_block

from dasm.augment import DSA
from dasm.device import resolve_device
from dasm.matching import GRAD_PATHS, gradient_match_backward, matched_parameters
from dasm.nets import get_network
from dasm.train import Recipe, train_model

ROOT = Path(__file__).resolve().parent
CLASSES, SHAPE = 10, (1, 28, 28)
BATCH_REAL, BATCH_NET, METRIC = 64, 128, "dc"   # the cpu preset's IDC settings


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def machine_name(device: torch.device) -> str:
    """The GPU's name on CUDA, else the CPU's (as the platform reports it)."""
    return torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()


def median_seconds(fn, device: torch.device, repeats: int, warmup: int = 2) -> float:
    """Median wall time of ``fn()`` over ``repeats`` calls, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def count_flops(fn) -> int:
    """Matmul and convolution FLOPs of one call of ``fn`` (forward and backward)."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def _rss_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _mmap_threshold(nbytes: int) -> None:
    """glibc: serve blocks of at least ``nbytes`` by mmap (returned to the OS on free); no-op elsewhere."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, nbytes)   # M_MMAP_THRESHOLD
        libc.malloc_trim(0)
    except (OSError, AttributeError):
        pass


def peak_memory_mb(fn, device: torch.device) -> float:
    """Extra memory one call of ``fn`` needs at its peak, in MiB (NaN where it cannot be measured)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        fn()
        sync(device)
        return (torch.cuda.max_memory_allocated(device) - base) / 2**20
    # Freed tensors must leave the resident set for its peak to show one call's need: glibc keeps
    # them in its heap unless they were mmapped, so lower the mmap threshold while measuring (it
    # slows allocation, hence not while timing) and restore glibc's largest default after.
    _mmap_threshold(128 * 1024)
    try:
        Path("/proc/self/clear_refs").write_text("5")   # resets VmHWM to the current RSS
    except OSError:
        _mmap_threshold(32 * 2**20)
        return float("nan")
    base = _rss_kib("VmRSS")
    fn()
    peak = _rss_kib("VmHWM")
    _mmap_threshold(32 * 2**20)
    return float("nan") if base is None or peak is None else (peak - base) / 1024


def matmul_flops(device: torch.device, n: int = 2048, repeats: int = 10) -> float:
    """Dense float32 matmul FLOP/s of ``device`` (n x n by n x n)."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    return 2 * n ** 3 / median_seconds(lambda: a @ b, device, repeats)


def matching_step(net, xr, yr, xs, ys, path: str):
    """One matching step as the engine does it: the loss and its backward to the synthetic pixels."""
    def step() -> torch.Tensor:
        xs.grad = None
        return gradient_match_backward(net, xr, yr, xs, ys, METRIC, "all", path)
    return step


def measure(device: torch.device, ipc: int, width: int, repeats: int, gen: torch.Generator) -> list[dict]:
    """All timings of one (IPC, width) cell."""
    torch.manual_seed(0)
    net = get_network("convnet", SHAPE[0], CLASSES, SHAPE[1:], width=width).to(device)
    xr = torch.randn(CLASSES, BATCH_REAL, *SHAPE, generator=gen).to(device)
    xs = torch.randn(CLASSES, ipc, *SHAPE, generator=gen).to(device).requires_grad_(True)
    yr = torch.arange(CLASSES, device=device).view(-1, 1).expand(CLASSES, BATCH_REAL)
    ys = torch.arange(CLASSES, device=device).view(-1, 1).expand(CLASSES, ipc)
    rows = []

    def row(op: str, path: str, fn, flops: int | None = None) -> dict:
        sec = median_seconds(fn, device, repeats)
        flops = flops if flops is not None else count_flops(fn)
        r = {"op": op, "path": path, "ipc": ipc, "width": width, "median_s": sec, "gflop": flops / 1e9,
             "gflops_per_s": flops / sec / 1e9, "peak_mb": peak_memory_mb(fn, device)}
        rows.append(r)
        return r

    # Every path does the same math; the counter sees vmap's batched kernels as more work than they
    # are, so all rows credit the first path's count (the FLOPs the step needs).
    # The paths are compared in float32: cuDNN's TF32 convolutions (PyTorch's default on CUDA, kept
    # for the timings) round to 10 mantissa bits, and the paths pick different kernels.
    tf32, torch.backends.cudnn.allow_tf32 = torch.backends.cudnn.allow_tf32, False
    try:
        losses = {path: matching_step(net, xr, yr, xs, ys, path)().item() for path in GRAD_PATHS}
    finally:
        torch.backends.cudnn.allow_tf32 = tf32
    needed = None
    for path in GRAD_PATHS:
        counted = row("match", path, matching_step(net, xr, yr, xs, ys, path), needed)["gflop"] * 1e9
        needed = counted if needed is None else needed
    # the loss sums 1 - cos over every output channel of every matched layer and class: compare per term
    terms = CLASSES * sum(p.shape[0] for n, p in net.named_parameters() if n in matched_parameters(net, "all"))
    if max(losses.values()) - min(losses.values()) > 1e-5 * terms:
        raise AssertionError(f"the gradient paths' matching losses differ by more than 1e-5 per term: {losses}")
    row("match/class", "loop", matching_step(net, xr[:1], yr[:1], xs[:1], ys[:1], "loop"))

    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.5)
    xn = torch.randn(BATCH_NET, *SHAPE, generator=gen).to(device)
    yn = torch.randint(0, CLASSES, (BATCH_NET,), generator=gen).to(device)

    def net_update() -> None:
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(net(xn), yn).backward()
        opt.step()
    row("net-update", "-", net_update)

    xe = xs.detach().flatten(0, 1)
    ye = ys.flatten()
    dsa = DSA.for_dataset("fashion-mnist")
    eval_net = get_network("convnet", SHAPE[0], CLASSES, SHAPE[1:], width=width).to(device)

    def eval_epoch() -> None:
        train_model(eval_net, xe, ye, Recipe(epochs=1, batch_size=256), augment=dsa, progress=False)
    row("eval-epoch", "-", eval_epoch)
    return rows


def speed_table(table: pd.DataFrame) -> str:
    """One row per (op, path, IPC, width): median time, GFLOP/s, share of matmul FLOP/s, peak memory; the
    machine's dense matmul rate below."""
    t = table.sort_values(["ipc", "width"], kind="stable")
    shown = pd.DataFrame({"step": t.op, "path": t.path, "IPC": t.ipc, "width": t.width,
                          "median time": (t.median_s * 1000).map("{:.0f} ms".format),
                          "GFLOP/s": t.gflops_per_s.map("{:.0f}".format), "of matmul": t.frac_matmul.map("{:.0%}".format),
                          "peak memory": t.peak_mb.map("{:.0f} MiB".format)})
    first = table.iloc[0]
    return (to_markdown(shown) + f"\n\nDense float32 matmul on the same machine: {first.matmul_gflops_per_s:.0f} "
            f"GFLOP/s ({first.device}, {first.threads} threads, torch {first.torch}).")


def cpu_block() -> str:
    """docs/speed.md: the committed CPU speed table."""
    return speed_table(pd.read_csv(ROOT / "results" / "speed_cpu.csv"))


def cuda_block() -> str:
    """docs/gpu.md: the committed CUDA speed table."""
    return speed_table(pd.read_csv(ROOT / "results" / "speed_cuda.csv"))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--ipcs", default="10,50")
    p.add_argument("--widths", default="32,64,128")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", help="CSV path (default: benchmarks/results/speed_<device>.csv)")
    args = p.parse_args()
    device = resolve_device(args.device)
    peak = matmul_flops(device)
    out = Path(args.out) if args.out else ROOT / "results" / f"speed_{device.type}.csv"
    partial = out.with_suffix(".partial.csv")   # cells finished so far: a rerun skips them
    rows = pd.read_csv(partial).to_dict("records") if partial.exists() else []
    for ipc in [int(i) for i in args.ipcs.split(",")]:
        for width in [int(w) for w in args.widths.split(",")]:
            if any(r["ipc"] == ipc and r["width"] == width for r in rows):
                continue
            rows += measure(device, ipc, width, args.repeats, torch.Generator().manual_seed(ipc * 1000 + width))
            out.parent.mkdir(parents=True, exist_ok=True)
            pd.DataFrame(rows).to_csv(partial, index=False)
            print(f"ipc {ipc} width {width} done", flush=True)
    table = pd.DataFrame(rows).assign(
        frac_matmul=lambda d: d.gflops_per_s * 1e9 / peak, matmul_gflops_per_s=peak / 1e9,
        device=device.type, threads=torch.get_num_threads(), cpus=os.cpu_count(),
        machine=machine_name(device), torch=torch.__version__)
    table.to_csv(out, index=False)
    partial.unlink(missing_ok=True)
    print(f"dense matmul: {peak / 1e9:.1f} GFLOP/s on {device}")
    show = table[["op", "path", "ipc", "width", "median_s", "gflops_per_s", "frac_matmul", "peak_mb"]]
    print(show.to_markdown(index=False, floatfmt=".3g"))
    if out == ROOT / "results" / f"speed_{device.type}.csv" and device.type in ("cpu", "cuda"):
        block = "speed" if device.type == "cpu" else "speed-cuda"
        write_block(block)
        print(f"docs block {block} rewritten")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
