"""Every figure of the diagnosis from saved runs, headless, as PNG + PDF with the table behind each.

:func:`make_figures` takes run folders (each holding a ``synthetic.pt`` and usually a
``results.csv``) and writes into ``out``:

- ``difficulty_hist_<loss|forgetting>.{png,pdf,csv}``: real samples by a full-data network's
  difficulty, split by whether each set's network gets them right, one panel per set, and an
  ``_overlay`` version comparing the sets' wrong samples;
- ``gradient_alignment.*``: cosine between each set's class gradient and real per-sample
  gradients, by difficulty decile;
- ``embedding_<set>.*``: real features (coloured by difficulty) with the set overlaid by segment;
- ``saturation.*``: test accuracy against IPC from every ``results.csv`` found, and
  ``gain_over_idc.*``: each method minus IDC on the same seed, per IPC (when IDC rows are there);
- ``redundancy_<set>.*``: what two disjoint halves of a set teach alone and together.

``only`` (``dasm figures --only``) picks some of :data:`FIGURES`; the full-data reference
networks behind the difficulty scores are cached in ``out/cache``, so a second call with other
figures or other runs reuses them.

:func:`fast_runs` makes a small set of digits runs (random, IDC, DASM) so that
``dasm figures --fast`` shows the whole pipeline in a few minutes.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import torch
from matplotlib.figure import Figure
from torch import Tensor

from ..data import Dataset
from ..difficulty import forgetting_scores, loss_scores, reference_network
from ..files import load_or_compute
from ..nets import get_network
from ..runs import read_results
from ..synthetic import SyntheticSet
from .alignment import gradient_alignment, plot_alignment
from .embeddings import embedding_table, plot_embedding
from .gain import gain_table, plot_gain
from .histograms import difficulty_table, histogram_counts, plot_difficulty_histogram, train_on_set
from .redundancy import plot_redundancy, redundancy_table
from .saturation import plot_saturation, saturation_table


def save_figure(fig: Figure, table: pd.DataFrame, out: Path, name: str) -> list[Path]:
    """Write ``name``.png, .pdf and .csv (the table the figure was drawn from) into ``out``."""
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{name}.png", out / f"{name}.pdf", out / f"{name}.csv"]
    fig.savefig(paths[0])
    fig.savefig(paths[1])
    table.to_csv(paths[2], index=False)
    plt.close(fig)
    return paths


def save_gain_figure(results: pd.DataFrame, out: Path, name: str, baseline: str = "idc") -> list[Path]:
    """Draw each method's gain over ``baseline`` on the same seed (:func:`~dasm.analysis.gain.gain_table`)
    and save it like :func:`save_figure`; write nothing while no method shares an (IPC, seed) with it."""
    if not (results["method"] == baseline).any():
        return []
    gains = gain_table(results, baseline=baseline)
    return save_figure(plot_gain(gains), gains, out, name) if len(gains) else []


def find_runs(paths: list[str | os.PathLike]) -> dict[str, Path]:
    """Run folders holding a ``synthetic.pt`` under ``paths``, named ``<method>-ipc<ipc>`` (made unique)."""
    runs: dict[str, Path] = {}
    for p in map(Path, paths):
        for file in sorted([p] if p.is_file() else p.rglob("synthetic.pt")):
            if file.parent.name.startswith("segment"):
                continue  # a DASM segment's intermediate set, not a finished run
            syn = SyntheticSet.load(file)
            name = f"{syn.meta.get('method', file.parent.name)}-ipc{syn.ipc}"
            while name in runs:
                name += "'"
            runs[name] = file.parent
    if not runs:
        raise FileNotFoundError(f"No synthetic.pt found under {', '.join(map(str, paths))}: "
                                "distill something first (`dasm distill ... --out DIR`).")
    return runs


def fast_runs(data: Dataset, out: str | os.PathLike, ipc: int = 10, iterations: int = 10,
              progress: bool = False) -> dict[str, Path]:
    """Small random / IDC / DASM runs on ``data`` (1 evaluation seed, 50 epochs) for a quick figure set."""
    from ..runs import cell_folder, grid, run_grid

    cells = grid(["random", "idc", "dasm"], [ipc], iterations=iterations, probe_epochs=30, segments=5)
    run_grid(data, cells, out, epochs=50, progress=progress)
    return {f"{c.method}-ipc{ipc}": cell_folder(out, data, c) for c in cells}


FIGURES = ("histograms", "alignment", "embeddings", "saturation", "redundancy")


def difficulty_reference(data: Dataset, epochs: int, width: int, seed: int = 0, cache_dir: Path | None = None,
                         progress: bool = False) -> tuple[torch.nn.Module, Tensor, Tensor, Tensor]:
    """A full-data ConvNet and the difficulty of every real training sample: ``(net, loss, forgetting,
    never_learned)``. Cached in ``cache_dir`` (keyed by dataset, width, epochs, seed) when given."""
    file = None if cache_dir is None else Path(cache_dir) / f"difficulty-{data.name}-w{width}-e{epochs}-s{seed}.pt"

    def compute() -> dict:
        net = reference_network(data, epochs=epochs, seed=seed, progress=progress, width=width)
        forget, never = forgetting_scores(data, epochs=epochs, seed=seed, progress=progress, width=width)
        return {"net": net.state_dict(), "loss": loss_scores(net, data.x_train, data.y_train, data.normalize),
                "forgetting": forget, "never": never}

    state = load_or_compute(file, compute, data.device)
    net = get_network("convnet", data.channels, data.num_classes, data.im_size, width=width).to(data.device)
    net.load_state_dict(state["net"])
    return net.eval(), state["loss"], state["forgetting"], state["never"]


def make_figures(data: Dataset, runs: dict[str, Path], out: str | os.PathLike, *, fast: bool = False,
                 reference_epochs: int = 20, reference_width: int = 128, set_epochs: int = 300,
                 alignment_per_class: int | None = 500, embed_method: str = "umap",
                 results: list[str | os.PathLike] = (), only: list[str] | None = None,
                 progress: bool = False, seed: int = 0) -> list[Path]:
    """Regenerate the diagnosis figures for ``runs`` into ``out`` (all of :data:`FIGURES`, or ``only``
    those); return the files written.

    The saturation curve reads the runs' ``results.csv`` plus the tables in ``results`` (e.g. a
    benchmark's CSV with more seeds, methods or IPCs); a row present in several counts once.
    The full-data networks (the loss reference and the forgetting run) train for ``reference_epochs``
    at ``reference_width`` and are cached in ``out/cache``: on Fashion-MNIST, width 32 and 10
    epochs take minutes on 2 CPU cores instead of hours. Gradient alignment uses
    ``alignment_per_class`` real samples a class (None: all).
    """
    chosen = list(FIGURES) if only is None else list(only)
    unknown = sorted(set(chosen) - set(FIGURES))
    if unknown:
        raise ValueError(f"Unknown figures {unknown}; choose from {', '.join(FIGURES)}.")
    out = Path(out)
    written: list[Path] = []
    if fast:
        reference_epochs, set_epochs, embed_method = min(reference_epochs, 3), min(set_epochs, 50), "pca"
        alignment_per_class = 30
    sets = {name: SyntheticSet.load(folder / "synthetic.pt", device=data.device) for name, folder in runs.items()}
    if {"histograms", "alignment", "embeddings"} & set(chosen):
        # Difficulty of every real sample under a full-data network (loss) and while training one (forgetting).
        reference, loss, forget, never = difficulty_reference(data, reference_epochs, reference_width, seed,
                                                              out / "cache", progress)

    if "histograms" in chosen:
        nets = {name: train_on_set(data, *syn.decoded(), epochs=set_epochs, seed=seed, progress=progress)
                for name, syn in sets.items()}
        for score_name, scores, nl in (("loss", loss, None), ("forgetting", forget, never)):
            table = difficulty_table(data, scores, nl, score_name=score_name, sets=nets)
            # Log counts: on a full dataset the easy bins hold most samples and hide the hard tail.
            written += save_figure(plot_difficulty_histogram(table, log=True), table, out,
                                   f"difficulty_hist_{score_name}")
            written += save_figure(plot_difficulty_histogram(table, overlay=True, log=True), table, out,
                                   f"difficulty_hist_{score_name}_overlay")
            # The per-sample table is one row per real image and set; the binned counts are small to keep.
            counts = out / f"difficulty_hist_{score_name}_counts.csv"
            histogram_counts(table).to_csv(counts, index=False)
            written.append(counts)

    if "alignment" in chosen:
        # Gradient alignment at a freshly initialised matching network, as a distiller sees it.
        torch.manual_seed(seed)
        probe = get_network("convnet", data.channels, data.num_classes, data.im_size).to(data.device)
        per_set = [gradient_alignment(probe, data, *syn.decoded(), loss, max_per_class=alignment_per_class,
                                      seed=seed, set_name=name) for name, syn in sets.items()]
        table = pd.concat(per_set, ignore_index=True)
        written += save_figure(plot_alignment(table), table, out, "gradient_alignment")

    if "embeddings" in chosen:
        # Embeddings of real features (reference network) with each set overlaid by segment.
        for name, syn in sets.items():
            table = embedding_table(reference, data, syn, loss, method=embed_method,
                                    max_real=500 if fast else 2000, seed=seed, cache_dir=out / "cache")
            written += save_figure(plot_embedding(table), table, out, f"embedding_{name}")

    rows = read_results(list(runs.values()) + list(results)) if "saturation" in chosen else pd.DataFrame()
    if len(rows) and (rows["metric"] == "test_acc").any():
        # Saturation over IPC from every results table of the runs and the extra tables.
        key = [c for c in ("dataset", "method", "ipc", "seed", "arch", "metric", "protocol") if c in rows.columns]
        rows = rows.drop_duplicates(key)
        table = saturation_table(rows)
        written += save_figure(plot_saturation(table), table, out, "saturation")
        written += save_gain_figure(rows, out, "gain_over_idc")

    if "redundancy" in chosen:
        # Redundancy of each distilled (non-coreset) set's halves.
        for name, syn in sets.items():
            if syn.ipc >= 2 and str(syn.meta.get("method")) not in ("random", "herding", "kcenter"):
                table = redundancy_table(data, syn, epochs=set_epochs, seeds=[seed], progress=progress)
                written += save_figure(plot_redundancy(table), table, out, f"redundancy_{name}")
    return written
