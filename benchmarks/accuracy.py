"""Accuracy suite: every method x IPC {1, 10, 50} x 3 seeds on digits and Fashion-MNIST (cpu preset).

Rows: coresets (random, herding), the base distillers (DC, DSA, DM, IDC), DASM with 5
segments and its ablations (sequential without difficulty, static pruning). DASM and its
sequential ablation need at least one image per segment, so they start at IPC 10 (at IPC 1,
K = 1 *is* plain IDC). Evaluation: ConvNet under the preset's protocol; for IDC and DASM at
IPC 10 also MLP, LeNet and ResNet-18 (cross-architecture columns).

On digits (8x8, about 143 training images per class) IPC 50 is about 35% of each class, so
coresets there are no longer "small": the curve is expected to flatten toward full data.

    python benchmarks/accuracy.py --quick        # digits, seed 0, IPC 1 and 10: about 8 minutes on 2 cores
    python benchmarks/accuracy.py                # both datasets, 3 seeds: many hours on 2 cores
    python benchmarks/accuracy.py --table        # only re-render the Markdown table
    python benchmarks/accuracy.py --datasets fashion-mnist --cells idc:10,dasm:10 --no-cross-arch

A cell that ``distill.py``'s suites already measured (same dataset and preset) is not run again:
the tables show those suites' rows next to this suite's own, from both result files.

Resumable (finished cells are skipped). Writes benchmarks/results/accuracy_<dataset>_<preset>.csv
and renders benchmarks/results/accuracy_<preset>.md next to the published numbers; on a GPU
(--device cuda) the files take a `_cuda` suffix and the docs' blocks are left alone, so rows
from two devices never count as each other's.
"""

from __future__ import annotations

import argparse

import pandas as pd
from benchmarks.cells import ROOT, RUNS, device_tag, parse_cells, run_cell, table_path
from benchmarks.distill import suite_tables
from benchmarks.report import mean_std, to_markdown, write_block

from dasm.config import preset_config, preset_protocol, reference_size
from dasm.data import load_dataset
from dasm.device import resolve_device
from dasm.methods import method, method_names
from dasm.published import PUBLISHED_ACCURACY

METHODS = [m for m in method_names() if m not in ("kcenter", "idc-starts")]   # every method but those two
IPCS = [1, 10, 50]
CROSS_ARCH = {"methods": ("idc", "dasm"), "ipc": 10, "archs": ["convnet", "mlp", "lenet", "resnet18"]}
DATASETS = ["digits", "fashion-mnist"]

PUBLISHED = PUBLISHED_ACCURACY


def cells(ipcs: list[int], methods: list[str]) -> list[tuple[str, int]]:
    """The (method, IPC) cells of the suite, skipping sequential methods below 2 images per class."""
    return [(m, i) for i in ipcs for m in methods if not (method(m).segments and i < 2)]


def archs_for(method: str, ipc: int) -> list[str]:
    """Evaluation networks of a cell: ConvNet, plus the cross-architecture ones for IDC/DASM at IPC 10."""
    if method in CROSS_ARCH["methods"] and ipc == CROSS_ARCH["ipc"]:
        return CROSS_ARCH["archs"]
    return ["convnet"]


def markdown_table(results: pd.DataFrame, dataset: str, ipcs: list[int] = IPCS) -> str:
    """Method x IPC table of mean ± std (seeds) test accuracy on ConvNet, with the published numbers."""
    acc = results[(results.metric == "test_acc") & (results.dataset == dataset) & (results.arch == "convnet")]
    rows = [{"method": m, **{f"IPC {i}": mean_std(acc[(acc.method == m) & (acc.ipc == i)].value, count=True)
                             for i in ipcs},
             f"published (IPC {'/'.join(map(str, ipcs))})": "/".join(map(str, PUBLISHED.get((dataset, m), ())))}
            for m in METHODS if m in set(acc.method)]
    text = to_markdown(pd.DataFrame(rows))
    full = results[(results.dataset == dataset) & (results.method == "full") & (results.metric == "test_acc")]
    if len(full):
        text += f"\n\nFull training set, same ConvNet: {mean_std(full.value, count=True)}."
    return text


def cross_arch_table(results: pd.DataFrame, dataset: str) -> str:
    """Method x architecture table at the cross-architecture IPC."""
    acc = results[(results.metric == "test_acc") & (results.dataset == dataset)
                  & (results.ipc == CROSS_ARCH["ipc"]) & results.method.isin(CROSS_ARCH["methods"])]
    if not (acc.arch != "convnet").any():   # nothing beyond the main table's column yet
        return ""
    return to_markdown(pd.DataFrame([{"method": m, **{a: mean_std(acc[(acc.method == m) & (acc.arch == a)].value,
                                                                  count=True) for a in CROSS_ARCH["archs"]}}
                                     for m in CROSS_ARCH["methods"]]))


def protocol_notes(preset: str, dataset: str) -> str:
    """How this table's protocol differs from the published one, stated from the preset itself."""
    proto = preset_protocol(preset, dataset, "idc")
    idc = {ipc: preset_config(preset, dataset, "idc", ipc) for ipc in IPCS}
    ref = reference_size(preset, dataset)

    def per_ipc(field: str) -> str:
        values = [getattr(c, field) for c in idc.values()]
        if len(set(values)) == 1:
            return str(values[0])
        return "/".join(map(str, values)) + " at IPC " + "/".join(map(str, idc))

    return (f"Protocol ({preset} preset): evaluation `{proto.id}` for IDC and DASM, DC's lr schedule for the "
            "others (published: 1000 epochs); full data: the dataset's reference recipe. IDC matches "
            f"with a width-{per_ipc('width')} ConvNet, {per_ipc('match_steps')} steps an iteration; iterations "
            f"{per_ipc('iterations')}; factor {per_ipc('factor')}; init {per_ipc('init')} (published: width 128, "
            "2000 iterations of 100 steps, factor 2, init mix). Herding, and the init modes (k-means modes of "
            f"each class), select in the embedding of a width-{ref['width']} ConvNet trained for "
            f"{ref['epochs']} epochs on all the data. Each cell distills and evaluates with the same seed; "
            "mean ± std over seeds (count in brackets).")


def dataset_section(results: pd.DataFrame, preset: str, dataset: str) -> str:
    """One dataset's accuracy table, protocol notes and cross-architecture table (also its docs block)."""
    parts = [markdown_table(results, dataset), "", protocol_notes(preset, dataset)]
    cross = cross_arch_table(results, dataset)
    if cross:
        parts += ["", f"Cross-architecture, IPC {CROSS_ARCH['ipc']}:\n", cross]
    return "\n".join(parts)


def results_for(dataset: str, preset: str, device: str = "cpu") -> pd.DataFrame:
    """This suite's rows for ``dataset``, ``preset`` and ``device``, then the distillation suites' rows
    for cells (and architectures) it does not hold itself."""
    return suite_tables(dataset, preset, first=table_path("accuracy", dataset, preset, device), device=device)


def render(preset: str, datasets: list[str], device: str = "cpu") -> str:
    """The Markdown of every dataset's tables, written next to the CSVs (``accuracy_<preset>[_<device>].md``);
    the docs' blocks show the cpu preset's rows measured on the CPU."""
    parts = [f"# Accuracy suite ({preset} preset)\n", "Made by `python benchmarks/accuracy.py`; "
             "numbers are ConvNet test accuracy in percent.\n"]
    for name in datasets:
        results = results_for(name, preset, device)
        if results.empty:
            continue
        section = dataset_section(results, preset, name)
        parts += [f"## {name}\n", section, ""]
        if preset == "cpu" and device == "cpu":
            write_block(f"accuracy-{name}", section)
    text = "\n".join(parts)
    (ROOT / "results" / f"accuracy_{device_tag(preset, device)}.md").write_text(text)
    return text


def fashion_block() -> str:
    """docs/results.md: the accuracy suite's Fashion-MNIST section (cpu preset, CPU)."""
    return dataset_section(results_for("fashion-mnist", "cpu"), "cpu", "fashion-mnist")


def digits_block() -> str:
    """docs/results.md: the accuracy suite's digits section (cpu preset, CPU)."""
    return dataset_section(results_for("digits", "cpu"), "cpu", "digits")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="digits only, seed 0, IPC 1 and 10")
    p.add_argument("--table", action="store_true", help="only render the Markdown table from the CSVs")
    p.add_argument("--datasets", default=",".join(DATASETS))
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--ipcs", default=",".join(map(str, IPCS)))
    p.add_argument("--cells", help="method:IPC list (and/or `full`) instead of the full-data cell + methods x IPCs")
    p.add_argument("--no-cross-arch", action="store_true", help="evaluate on ConvNet only (add the others later)")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--preset", default="cpu")
    p.add_argument("--device", default="auto")
    p.add_argument("--runs", default=str(RUNS))
    args = p.parse_args()
    datasets = ["digits"] if args.quick else args.datasets.split(",")
    seeds = [0] if args.quick else [int(s) for s in args.seeds.split(",")]
    ipcs = [1, 10] if args.quick else [int(i) for i in args.ipcs.split(",")]
    device = resolve_device(args.device)
    if not args.table:
        for name in datasets:
            data = load_dataset(name, device=device)
            table = table_path("accuracy", data.name, args.preset, device.type)
            elsewhere = suite_tables(data.name, args.preset, device=device.type)
            todo = parse_cells(args.cells) if args.cells else [("full", 0)] + cells(ipcs, args.methods.split(","))
            for seed in seeds:
                for method, ipc in todo:
                    archs = ["convnet"] if args.no_cross_arch else archs_for(method, ipc)
                    run_cell(data, method, ipc, seed, table, preset=args.preset, archs=archs, runs=args.runs,
                             elsewhere=elsewhere)
                    render(args.preset, datasets, device.type)   # docs and CSV agree after every cell
    print(render(args.preset, DATASETS, device.type))


if __name__ == "__main__":
    main()
