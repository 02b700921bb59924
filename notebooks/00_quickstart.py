# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Quickstart: ten learned images per class
#
# **Dataset distillation** turns a large labelled training set into a handful of *learned*
# images per class (IPC, "images per class") such that a network trained from scratch on
# those few images does almost as well as one trained on all the data. The images are not
# picked from the data set: their pixels are optimised, so that training on them pushes a
# network's weights the same way the real data would (*gradient matching*).
#
# This notebook shows the whole idea in four steps on scikit-learn's bundled 8x8 digits
# (nothing to download; a few minutes on a laptop CPU):
#
# 1. load the data and look at it;
# 2. distill a small synthetic set with **IDC** (the base distiller of this project);
# 3. look at the synthetic images;
# 4. train a fresh network on them and compare with the same number of *real* images
#    chosen at random (a "random coreset").
#
# Change `DATASET` to `"fashion-mnist"` to run the same steps on Fashion-MNIST (better on a GPU).
#
# What you should see: the IDC images look like blurred, averaged digits, and a network trained on
# them scores a few points above the same number of random real images (both far below the full data
# at this size). `docs/notebooks/00_quickstart.ipynb` is this notebook executed.
#
# <!-- time:start -->
# Measured time: digits 1.2 min (quick profile, 2-core x86_64 CPU, 2026-12-06); Fashion-MNIST not measured yet (`python -m benchmarks.notebooks 00_quickstart --dataset fashion-mnist`).
# <!-- time:end -->

# %% tags=["parameters"]
DATASET = "digits"          # "digits" (bundled) or "fashion-mnist"
IPC = 10                    # images per class of the synthetic set
ITERATIONS = None           # distillation iterations; None: the preset's budget
EVAL_EPOCHS = None          # epochs of each evaluation training; None: the preset's (300 on "cpu")
SEEDS = [0, 1, 2]           # evaluation seeds (one fresh network each)
PRESET = "cpu"              # "cpu" (laptop budget) or "paper" (published settings, for a GPU)
OUT = "../data/runs/nb00"   # run folders go here (relative to notebooks/)
DEVICE = "auto"             # "auto", "cpu" or "cuda"

# %%
# %matplotlib inline
from pathlib import Path

import pandas as pd
import torch

from dasm.analysis.grids import plot_class_grid
from dasm.data import load_dataset
from dasm.device import resolve_device
from dasm.evaluate import summarize
from dasm.runs import distill_run, evaluate_run

out = Path(OUT) / f"{DATASET}-ipc{IPC}"


# %% [markdown]
# ## 1. The data
#
# `load_dataset` returns the whole data set as tensors (pixels in [0, 1], shape N x C x H x W)
# on the chosen device, with the class names and a per-class index.

# %%
data = load_dataset(DATASET, device=resolve_device(DEVICE))
data

# %% [markdown]
# A few real training images of each class:

# %%
show_k = 8
idx = torch.cat([ix[:show_k] for ix in data.class_index])
plot_class_grid(data.x_train[idx], data.y_train[idx], data.classes, f"real {DATASET} images");

# %% [markdown]
# ## 2. Distill
#
# `distill_run` makes the `IPC`-per-class set of a method in a *run folder* (`synthetic.pt`,
# a PNG grid, the config and the loss history) and returns it as a `SyntheticSet`. IDC starts
# from real images and, for many freshly initialised networks, nudges the pixels so that the
# synthetic images of each class produce the same training gradient as a batch of real
# images of that class.
#
# Run folders make the work resumable: running this cell again loads the finished set
# instead of distilling it again (a folder holding a run with *other* settings is refused:
# change `OUT` or delete the folder). For comparison we also select a random coreset of the
# same size into its own folder.

# %%
syn = distill_run(data, "idc", IPC, out / "idc", preset=PRESET, iterations=ITERATIONS)
coreset = distill_run(data, "random", IPC, out / "random", preset=PRESET)
syn

# %% [markdown]
# ## 3. Look at the synthetic images
#
# `SyntheticSet.decoded()` gives the training view of the set: the images a network is
# trained on and their labels (with a multi-formation factor above 1, each stored image
# decodes into several; the cpu preset uses factor 1 on small images).

# %%
x_syn, y_syn = syn.decoded()
plot_class_grid(x_syn, y_syn, data.classes, f"IDC, {IPC} images per class");

# %% [markdown]
# ## 4. Train on the synthetic set and test
#
# `evaluate_run` trains a fresh network from scratch on the set of a run folder, once per
# seed, and reports the **last epoch's** test accuracy (the field's protocol; nothing is
# chosen on the test split). The rows are appended to the run's `results.csv`, so finished
# evaluations are not repeated. The random coreset goes through the very same protocol.

# %%
results = pd.concat([evaluate_run(out / method, data, preset=PRESET, seeds=SEEDS, epochs=EVAL_EPOCHS)
                     for method in ("random", "idc")], ignore_index=True)
table = summarize(results)
table[["method", "ipc", "mean", "std", "count", "protocol"]]

# %%
acc = table.set_index("method")
print(f"Test accuracy with {IPC} images per class ({len(SEEDS)} seeds): "
      f"IDC {acc.loc['idc', 'mean']:.1f} ± {acc.loc['idc', 'std']:.1f}%   vs   "
      f"random real images {acc.loc['random', 'mean']:.1f} ± {acc.loc['random', 'std']:.1f}%")

# %% [markdown]
# ## Where next
#
# - `01_easy_sample_bias`: *which* real samples the distilled set fails to teach, and why;
# - `02_sequential_distillation`: DASM, distilling in segments from easy to hard samples;
# - `03_saturation_over_ipc`: accuracy as the budget grows, where plain distillers saturate;
# - `04_cross_architecture`: does a set distilled with one network train others?
