# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Cross-architecture: does a set distilled with one network train others?
#
# A synthetic set is distilled by matching the gradients of *one* architecture (here the
# field's ConvNet). A set that only encodes that network's quirks is of little use; a good
# set trains other networks too. The standard check: evaluate the saved sets, unchanged, on
# several architectures with the same training recipe, and compare with real images of the
# same number (a random coreset), which has no architecture of its own.
#
# Steps: distill (or reuse) small runs of random / IDC / DASM, evaluate each on every
# architecture in `ARCHS`, then a method x architecture table and a heat map.
#
# Cost: every set is trained once per architecture and seed; ResNet-18 dominates (on Fashion-MNIST
# about ten times a ConvNet's time on a CPU), so drop it from `ARCHS` or `SEEDS` for a quick look.
# What you should see: the distilled sets lose a few points off the ConvNet they were distilled with,
# the random coreset much less; on Fashion-MNIST the project measured no difference between DASM's
# and IDC's transfer (`docs/results.md`, cross-architecture columns).
#
# <!-- time:start -->
# Measured time: digits 12.0 min (quick profile, 2-core x86_64 CPU, 2026-12-06); Fashion-MNIST not measured yet (`python -m benchmarks.notebooks 04_cross_architecture --dataset fashion-mnist`).
# <!-- time:end -->

# %% tags=["parameters"]
DATASET = "digits"          # "digits" (bundled) or "fashion-mnist"
IPC = 10                    # images per class of every set
METHODS = ["random", "idc", "dasm"]
ARCHS = ["convnet", "mlp", "lenet", "resnet18"]
SEGMENTS = 5                # DASM's segments (capped at the IPC)
ITERATIONS = None           # distillation iterations; None: the preset's budget
EVAL_EPOCHS = None          # epochs of each evaluation training; None: the preset's (300 on "cpu")
SEEDS = [0, 1, 2]           # evaluation seeds per architecture
PRESET = "cpu"              # "cpu" (laptop budget) or "paper" (published settings, for a GPU)
OUT = "../data/runs/nb04"   # run folders (relative to notebooks/)
DEVICE = "auto"             # "auto", "cpu" or "cuda"

# %%
# %matplotlib inline
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from IPython.display import display

from dasm.analysis.style import dasm_style
from dasm.data import load_dataset
from dasm.device import resolve_device
from dasm.evaluate import summarize
from dasm.nets import list_networks
from dasm.runs import cell_folder, evaluate_run, grid, run_grid

out = Path(OUT) / f"{DATASET}-ipc{IPC}"
data = load_dataset(DATASET, device=resolve_device(DEVICE))
data

# %% [markdown]
# ## 1. The architectures
#
# `dasm.nets` builds networks by name; every one accepts the data set's channels, classes
# and image size (the 8x8 digits included). The ConvNet is the one the distillers match
# with; the others differ in depth, normalisation and pooling.

# %%
list_networks()

# %% [markdown]
# ## 2. The sets
#
# One run folder per method, named by its settings. `run_grid` loads a finished run instead of
# repeating it, so this cell is quick the second time. To evaluate sets made elsewhere (e.g. by
# `03_saturation_over_ipc` or `dasm distill`), point `runs` at their folders instead.

# %%
cells = grid(METHODS, [IPC], iterations=ITERATIONS, segments=SEGMENTS)
run_grid(data, cells, out, preset=PRESET, epochs=EVAL_EPOCHS)
runs = {c.method: cell_folder(out, data, c, PRESET) for c in cells}
pd.Series({m: str(p) for m, p in runs.items()}, name="run folder").to_frame()

# %% [markdown]
# ## 3. Evaluate on every architecture
#
# `evaluate_run(path, data, archs=...)` trains a fresh network of each architecture per seed
# on the set (the preset's recipe: DSA augmentation, SGD, last-epoch test accuracy) and
# appends to the run's `results.csv`; evaluations already there are not repeated.

# %%
results = pd.concat([evaluate_run(path, data, preset=PRESET, archs=ARCHS, seeds=SEEDS, epochs=EVAL_EPOCHS)
                     for path in runs.values()], ignore_index=True)
summary = summarize(results)
summary[["method", "ipc", "arch", "mean", "std", "count", "protocol"]]

# %% [markdown]
# ## 4. Method x architecture
#
# Mean test accuracy over seeds, and the change relative to the ConvNet the sets were
# distilled with (for the coreset, the ConvNet is just one more architecture).

# %%
accuracy = summary.pivot_table(index="method", columns="arch", values="mean").reindex(index=METHODS, columns=ARCHS)
accuracy.round(1)

# %%
if "convnet" in accuracy.columns:
    display((accuracy.sub(accuracy["convnet"], axis=0)).round(1))

# %%
with dasm_style():
    fig, ax = plt.subplots(figsize=(1.4 * len(ARCHS) + 2, 0.7 * len(METHODS) + 1.5))
    sns.heatmap(accuracy, annot=True, fmt=".1f", cmap="viridis", cbar_kws={"label": "test accuracy (%)"}, ax=ax)
    ax.set_xlabel("evaluated on")
    ax.set_ylabel("set")
    ax.set_title(f"{DATASET}, {IPC} images per class ({len(SEEDS)} seed(s) each)")
    ax.grid(False)
    fig.tight_layout()

# %% [markdown]
# ## Reading the table
#
# A distilled set that keeps its lead over the random coreset on every column generalises
# across architectures; a lead that shrinks or flips away from the ConvNet means the set
# encodes the matching network more than the data. Normalisation matters most: networks
# with batch norm (`convnet-bn`, `resnet18-bn`) are a harder test than instance norm.
#
# LeNet has no normalisation at all and learns slowly under this recipe (on all 1,437
# digits it needs ~100 epochs to pass 90%); with a small `EVAL_EPOCHS` it stays near
# chance for every set, which says more about the recipe than about the sets.
