"""What a paper-preset run costs on this device, measured on a slice of it and projected to the whole.

A `paper` run of IDC on Fashion-MNIST is 2000 outer iterations x 100 matching steps (each with
8 network updates on real data), then 1000 evaluation epochs per seed; DASM adds its probes
(300 epochs each on the segments so far) and one scoring pass per segment. This script times
``--steps`` real matching steps of the preset (after a warm-up), ``--epochs`` evaluation epochs on a
set of the preset's decoded size and one scoring pass over the training set, then multiplies by
the preset's counts. Run it before planning device time for ``benchmarks/distill.py --preset paper``:

    python benchmarks/paper_time.py --device cuda              # IPC 10 and 50
    python benchmarks/paper_time.py --ipcs 10 --steps 3 --epochs 2   # a quick look on a CPU

Writes benchmarks/results/paper_time_<dataset>_<device>.csv: one row per (method, IPC, part) with the
seconds of one unit (a matching step, an epoch, a scoring pass), how many units the full run does,
and the projected hours.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from math import ceil

import pandas as pd
import torch

from benchmarks.cells import ROOT
from benchmarks.report import to_markdown, write_block
from benchmarks.speed import machine_name, median_seconds

from dasm.config import dasm_preset_config, preset_config, preset_protocol
from dasm.data import load_dataset
from dasm.device import resolve_device
from dasm.difficulty import score_samples
from dasm.distill import distill
from dasm.evaluate import Protocol, make_augment
from dasm.nets import get_network
from dasm.train import train_model


def seconds_per_step(data, ipc: int, steps: int) -> float:
    """Wall seconds of one matching step of the paper IDC loop (its network updates included)."""
    distill(data, preset_config("paper", data.name, "idc", ipc, iterations=1, match_steps=2), progress=False)  # warm-up
    cfg = preset_config("paper", data.name, "idc", ipc, iterations=1, match_steps=steps + 1)
    _, hist = distill(data, cfg, progress=False)
    return float(hist.seconds.iloc[0]) / (steps + 1)


def seconds_per_epoch(data, protocol: Protocol, n_images: int, epochs: int) -> float:
    """Wall seconds of one epoch of ``protocol``'s training recipe on ``n_images`` images: the median of
    ``epochs`` epochs, after a warm-up epoch."""
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(n_images, data.channels, *data.im_size, generator=gen).to(data.device)
    y = torch.arange(n_images, device=data.device) % data.num_classes
    net = get_network(protocol.arch, data.channels, data.num_classes, data.im_size,
                      **dict(protocol.net_kwargs)).to(data.device)
    augment = make_augment(data, protocol.recipe)

    def epoch() -> None:
        train_model(net, x, y, replace(protocol.recipe, epochs=1), augment=augment, normalize=data.normalize,
                    progress=False)

    return median_seconds(epoch, data.device, repeats=epochs, warmup=1)


def seconds_per_scoring(data) -> float:
    """Wall seconds of scoring every training sample (loss under one probe), after a warm-up pass."""
    net = get_network("convnet", data.channels, data.num_classes, data.im_size, width=128).to(data.device)
    score_samples("loss", net, data.x_train[:1024], data.y_train[:1024], data.normalize)   # warm-up on a slice
    return median_seconds(lambda: score_samples("loss", net, data.x_train, data.y_train, data.normalize),
                          data.device, repeats=1, warmup=0)


def project(data, ipc: int, steps: int, epochs: int) -> list[dict]:
    """The rows of one IPC: IDC's distillation and evaluation, and what DASM adds."""
    cfg = preset_config("paper", data.name, "idc", ipc)
    dasm = dasm_preset_config("paper", data.name, ipc)
    protocol = preset_protocol("paper", data.name, "idc")
    decoded = ipc * cfg.factor ** 2 * data.num_classes
    step = seconds_per_step(data, ipc, steps)
    epoch = seconds_per_epoch(data, protocol, decoded, epochs)
    score = seconds_per_scoring(data)
    # DASM's probes train on S_1 .. S_{k-1} (k = 2 .. K); an epoch costs about its number of batches
    batch = protocol.recipe.batch_size
    sizes = dasm.segment_sizes()
    probe_batches = sum(ceil(sum(sizes[:k]) * cfg.factor ** 2 * data.num_classes / batch) for k in range(1, len(sizes)))
    per_batch = epoch / ceil(decoded / batch)
    parts = [("idc", "match-step", steps, step, cfg.iterations * cfg.match_steps),
             ("idc", "eval-epoch", epochs, epoch, protocol.recipe.epochs),
             ("dasm", "probe-batch", epochs * ceil(decoded / batch), per_batch, probe_batches * dasm.probe_epochs),
             ("dasm", "scoring-pass", 1, score, len(sizes) - 1)]
    return [{"dataset": data.name, "method": method, "ipc": ipc, "part": part, "timed_units": timed,
             "seconds_per_unit": sec, "units_full": units, "projected_hours": sec * units / 3600}
            for method, part, timed, sec, units in parts]


def paper_time_table(table: pd.DataFrame) -> str:
    """Per IPC, one unit's time and the projected hours of each part of a paper run, and the machine."""
    hours = [f"{h:.1f} h" if h >= 0.1 else f"{h * 60:.1f} min" for h in table.projected_hours]
    shown = pd.DataFrame({"method": table.method, "IPC": table.ipc, "part": table.part,
                          "one unit": (table.seconds_per_unit * 1000).map("{:.1f} ms".format),
                          "units in a paper run": table.units_full.map("{:,}".format), "projected": hours})
    first = table.iloc[0]
    return to_markdown(shown) + f"\n\nMeasured on {first.machine} ({first.device}, torch {first.torch})."


def cuda_block() -> str:
    """docs/gpu.md: the committed projection of a paper-preset run on CUDA."""
    return paper_time_table(pd.read_csv(ROOT / "results" / "paper_time_fashion-mnist_cuda.csv"))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--device", default="auto")
    p.add_argument("--ipcs", default="10,50")
    p.add_argument("--steps", type=int, default=20, help="matching steps timed per IPC")
    p.add_argument("--epochs", type=int, default=20, help="evaluation epochs timed per IPC")
    p.add_argument("--out", help="CSV path (default: benchmarks/results/paper_time_<dataset>_<device>.csv)")
    args = p.parse_args()
    device = resolve_device(args.device)
    data = load_dataset(args.dataset, device=device)
    rows = []
    for ipc in [int(i) for i in args.ipcs.split(",")]:
        rows += project(data, ipc, args.steps, args.epochs)
        print(f"ipc {ipc} timed", flush=True)
    table = pd.DataFrame(rows).assign(device=device.type, torch=torch.__version__, machine=machine_name(device))
    out = args.out or ROOT / "results" / f"paper_time_{data.name}_{device.type}.csv"
    table.to_csv(out, index=False)
    print(table[["method", "ipc", "part", "seconds_per_unit", "units_full", "projected_hours"]].to_markdown(
        index=False, floatfmt=".4g"))
    print(f"wrote {out}")
    if (data.name, device.type) == ("fashion-mnist", "cuda") and not args.out:
        write_block("paper-time-cuda")


if __name__ == "__main__":
    main()
