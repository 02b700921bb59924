# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Saturation: accuracy as the budget grows
#
# A distilled set should beat real images of the same number by a wide margin when the
# budget is tiny, and keep beating them as it grows. The published numbers show plain distillers
# **saturating** at the paper's budget: on Fashion-MNIST IDC's accuracy barely moves from 10 to 50
# images per class. What this project measured on Fashion-MNIST at its CPU
# budget is printed below from the committed tables: IDC's accuracy still rises from IPC 10 to 50, and
# the regime map (`docs/diagnosis.md`) separates what its starting images give from what matching
# adds. This notebook draws the curve for any budget.
#
# It sweeps images per class (IPC) for
#
# - **coresets**, real images selected at random or by herding (closest to the class mean
#   in a network's feature space);
# - **IDC**, the base distiller;
# - **DASM**, the same distiller in difficulty-aligned segments;
#
# and draws test accuracy against IPC with the full-data accuracy as the ceiling.
# `dasm.runs.run_grid` runs every (method, IPC, seed) into its own folder, named by its settings,
# and evaluates it; everything resumes, so an interrupted sweep picks up where it stopped and
# adding an IPC only runs the new cells of the grid.
#
# On a laptop CPU the default grid (3 IPCs x 4 methods x 3 seeds) takes a while (IDC and DASM
# at IPC 30 dominate); start with `IPCS = [1, 10]` and `SEEDS = [0]` for a first look.
#
# What you should see: every distiller above random real images at small IPC and the gap closing as
# IPC grows, the full-data line above all, and the `ComparePanel` drawing the same curve from the
# run folders.
#
# <!-- time:start -->
# Measured time: digits 3.4 min (quick profile, 2-core x86_64 CPU, 2026-12-06); Fashion-MNIST not measured yet (`python -m benchmarks.notebooks 03_saturation_over_ipc --dataset fashion-mnist`).
# <!-- time:end -->

# %% tags=["parameters"]
DATASET = "digits"          # "digits" (bundled) or "fashion-mnist"
IPCS = [1, 10, 30]          # images per class to sweep
METHODS = ["random", "herding", "idc", "dasm"]
SEEDS = [0, 1, 2]           # one distillation (and one evaluation) per seed
ITERATIONS = None           # distillation iterations; None: the preset's budget
EVAL_EPOCHS = None          # epochs of each evaluation training; None: the preset's (300 on "cpu")
SEGMENTS = 5                # DASM's segments (capped at the IPC)
FULL_EPOCHS = None          # full-data training epochs; None: the dataset's reference recipe
PRESET = "cpu"              # "cpu" (laptop budget) or "paper" (published settings, for a GPU)
OUT = "../data/runs/nb03"   # run folders (relative to notebooks/)
DEVICE = "auto"             # "auto", "cpu" or "cuda"

# %%
# %matplotlib inline
from dataclasses import replace
from pathlib import Path


from dasm.analysis.figures import save_figure
from dasm.analysis.saturation import plot_saturation, saturation_table
from dasm.data import load_dataset
from dasm.device import resolve_device
from dasm.evaluate import REAL_RECIPES
from dasm.runs import full_data_run, grid, read_results, run_grid

out = Path(OUT) / DATASET
data = load_dataset(DATASET, device=resolve_device(DEVICE))
data

# %% [markdown]
# ## What the project measured on Fashion-MNIST
#
# The README's table and its reading, rendered from the committed tables (`benchmarks/results/`): test
# accuracy over IPC with DASM against IDC paired by seed, then, on the validation split, what matching
# adds to each method's own starting images.

# %%
from IPython.display import Markdown

from benchmarks.distill import headline_block

Markdown(headline_block())

# %% [markdown]
# ## 1. The sweep
#
# `grid(methods, ipcs, seeds, **settings)` lists every (method, IPC, seed) cell with the settings
# its method takes (`iterations` no coreset, `segments` only DASM, capped at the IPC; `None` keeps
# the preset's value), and `run_grid(data, cells, out, ...)` distills (or selects) and evaluates
# each into its own folder under `out`, named by its settings, returning the tidy rows. A finished
# cell is loaded, an interrupted one resumes.

# %%
cells = grid(METHODS, IPCS, SEEDS, iterations=ITERATIONS, segments=SEGMENTS)
run_grid(data, cells, out, preset=PRESET, epochs=EVAL_EPOCHS);

# %% [markdown]
# ## 2. The ceiling: training on all the data
#
# The same ConvNet trained on the full training set (the dataset's reference recipe; on
# digits 100 epochs, on Fashion-MNIST 5). Its rows go to `out/full/results.csv` with
# `method = "full"`, which the saturation table keeps apart as the horizontal line.

# %%
recipe = REAL_RECIPES[data.name] if FULL_EPOCHS is None else replace(REAL_RECIPES[data.name], epochs=FULL_EPOCHS)
full = full_data_run(data, out / "full", seeds=SEEDS, recipe=recipe)
full.query("metric == 'test_acc'")[["method", "seed", "value", "protocol"]]

# %% [markdown]
# ## 3. The saturation table
#
# `read_results` collects every `results.csv` under the folder; `saturation_table` reduces it
# to mean, std and count over seeds per method and IPC (one row per protocol: numbers from
# different evaluation recipes are never averaged together). Each method is evaluated with
# its own paper's learning-rate schedule: DC's for the coresets, IDC's for IDC and DASM.

# %%
results = read_results([out])
table = saturation_table(results)
table[["method", "ipc", "mean", "std", "count", "protocol"]]

# %%
table[~table["is_full"]].pivot_table(index="method", columns="ipc", values="mean").reindex(METHODS).round(1)

# %% [markdown]
# What each point cost: the distillation (or selection) time in seconds, from the same
# results tables (`metric = "seconds"` rows with `arch = "-"`).

# %%
seconds = saturation_table(results, metric="seconds", arch="-")
seconds.pivot_table(index="method", columns="ipc", values="mean").reindex(METHODS).round(1)

# %% [markdown]
# ## 4. The curves
#
# `plot_saturation` draws the table on a log IPC axis, mean ± std over seeds, full data
# dashed. `save_figure` writes the PNG and PDF next to the CSV table it was drawn from.

# %%
fig = plot_saturation(table)

# %%
save_figure(fig, table, out, "saturation")

# %% [markdown]
# The same curves in a `ComparePanel`: pick runs (one per dataset, method, IPC and seed) to
# see the curve of just those, switch to the results table, or to the difficulty histograms
# of the selected sets. The full-data line comes from the `out/full` rows written above.

# %%
from dasm.widgets import ComparePanel

compare = ComparePanel([out])
compare.wait()
if compare.error is not None:
    raise compare.error
compare

# %% [markdown]
# ## Reading the curves
#
# Where the distiller's curve flattens while the coresets' keeps rising, extra synthetic
# images add little: they teach what the set already teaches (see `01_easy_sample_bias`).
# DASM matches its later segments against harder real samples so that its curve keeps climbing
# where the distiller's flattens; whether it does is a measurement, not a premise. The reading
# printed at the top of this notebook says what the project measured on Fashion-MNIST at the cpu
# preset: there IDC's curve has not flattened by IPC 50, DASM does not beat IDC, and on the
# validation split IDC's matching adds nothing to its starting images at IPC 50. On digits the gaps
# are small (the data set is easy and tiny). Whether the published plateau appears at the paper's
# budget is for `PRESET = "paper"` on a GPU (`docs/gpu.md`); the project has not measured it.
