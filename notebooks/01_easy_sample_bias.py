# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # The easy-sample bias: a diagnosis, tested against its controls
#
# DASM rests on a diagnosis: a distiller matched against all the real data learns what the many easy
# samples teach, so its extra images at high IPC add little for the hard ones, and the published
# accuracy plateaus. This notebook tests that diagnosis as a measurement. Every view puts the distilled
# set next to its **controls**:
#
# - `random`: random real images, as many as the set has;
# - `idc-starts`: the very images IDC starts from, not distilled: what matching adds is `idc` minus these;
# - `full`: a network trained on all the data, the ceiling.
#
# Difficulty always comes from networks trained on all the data (cached, so a second run trains
# nothing), never from the network being judged. The views, each a tidy table first and a figure
# drawn from it:
#
# 1. the easiest and hardest real images of a class;
# 2. each set's **error rate by difficulty** on the real training images, against the random set's;
# 3. **gradient alignment** by difficulty decile, with the full data's own curve;
# 4. an **embedding** of the real images with every set placed among them.
#
# What you should see: on digits, the distilled set errs less than random real images almost
# everywhere; whether it gains more on the easy or on the hard images is the number printed after
# each view, and a difference within the spread is "no bias visible". The project's measurement on
# Fashion-MNIST (three seeds, with intervals) is `docs/diagnosis.md`; the first cell below prints it.
#
# <!-- time:start -->
# Measured time: digits 1.4 min (quick profile, 2-core x86_64 CPU, 2026-12-06); Fashion-MNIST not measured yet (`python -m benchmarks.notebooks 01_easy_sample_bias --dataset fashion-mnist`).
# <!-- time:end -->

# %% tags=["parameters"]
DATASET = "digits"          # "digits" (bundled) or "fashion-mnist"
IPC = 10                    # images per class of the sets
ITERATIONS = None           # distillation iterations; None: the preset's budget
EVAL_EPOCHS = None          # training of a network on each set; None: the preset's protocol (300 on "cpu")
REFERENCE_EPOCHS = 20       # training of the full-data networks that define difficulty
REFERENCE_WIDTH = 64        # their ConvNet width (128 is the field's; 32 is ~4x cheaper on a CPU)
MAX_PER_CLASS = None        # real samples per class in the gradient alignment (None: all)
EMBEDDING = "umap"          # "umap" or "pca" (fast; no numba compilation)
MAX_REAL = 2000             # real points in the embedding
CLASS = 0                   # the class whose easiest and hardest images are shown
SEED = 0
PRESET = "cpu"              # "cpu" (laptop budget) or "paper" (published settings, for a GPU)
OUT = "../data/runs/nb01"   # run folders and caches (relative to notebooks/)
DEVICE = "auto"             # "auto", "cpu" or "cuda"

# %%
# %matplotlib inline
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import torch

from dasm.analysis.alignment import alignment_numbers, alignment_table, plot_alignment
from dasm.analysis.embeddings import embedding_numbers, embedding_sets_table, plot_embedding_sets
from dasm.analysis.figures import difficulty_reference, full_predictions
from dasm.analysis.grids import plot_class_grid
from dasm.analysis.errors import error_numbers, error_table, plot_error_by_difficulty, set_predictions
from dasm.config import preset_protocol
from dasm.data import load_dataset
from dasm.device import resolve_device
from dasm.nets import get_network
from dasm.runs import cell_folder, grid, run_grid
from dasm.synthetic import SyntheticSet

out = Path(OUT) / DATASET
cache = out / "cache"
data = load_dataset(DATASET, device=resolve_device(DEVICE))
data

# %% [markdown]
# ## What the project measured on Fashion-MNIST
#
# The committed tables (`benchmarks/results/`), read as they stand: test accuracy per difficulty decile
# of every set against the full-data networks, and the bias in one number per comparison (the gain on the
# hardest three deciles minus the gain on the easiest three, paired by seed; "differs from zero" when the
# 95% interval excludes it). Empty until `python benchmarks/diagnosis.py` has run.

# %%
results = Path("../benchmarks/results")
bias = results / "bias_fashion-mnist_cpu.csv"
if bias.exists():
    from benchmarks.diagnosis import bias_table

    display_table = bias_table(pd.read_csv(bias))
else:
    display_table = pd.DataFrame({"not measured yet": ["python benchmarks/diagnosis.py"]})
display_table

# %% [markdown]
# ## 1. How hard is each real image?
#
# A reference ConvNet trained on all the training data defines difficulty: its **loss** on each
# image, and the **forgetting** events of each image while such a network trains (Toneva et al. 2019;
# images it never learns get their own bin). `difficulty_reference` trains both once and caches them
# under `OUT`; a second run of this notebook loads them.

# %%
reference, loss, forgetting, never_learned = difficulty_reference(data, REFERENCE_EPOCHS, REFERENCE_WIDTH,
                                                                  seed=SEED, cache_dir=cache, progress=True)
pd.DataFrame({"loss": loss.cpu().numpy(), "forgetting": forgetting.cpu().numpy(),
              "never learned": never_learned.cpu().numpy()}).describe().T.round(3)

# %% [markdown]
# The easiest and the hardest images of one class by that loss: the easy ones are the typical shapes,
# the hard ones the odd, ambiguous or mislabelled ones.

# %%
members = data.class_index[CLASS].cpu()
order = members[torch.argsort(loss.cpu()[members])]
picked = torch.cat([order[:10], order[-10:]])
with plt.rc_context({"figure.dpi": 100}):
    fig, axes = plt.subplots(1, 2, figsize=(9, 1.6))
    for ax, part, title in ((axes[0], picked[:10], "easiest"), (axes[1], picked[10:], "hardest")):
        plot_class_grid(data.x_train[part.to(data.device)].cpu(), torch.zeros(10, dtype=torch.long),
                        [data.classes[CLASS]], ax=ax, names=False, title=f"the {title} ten of {data.classes[CLASS]!r}")

# %% [markdown]
# ## 2. The sets and their controls
#
# `run_grid` makes (or loads) the random set, IDC's starts and the IDC set, each in a folder named by its
# settings. A network is trained on each set with the preset's evaluation protocol and classifies every
# real training image (`set_predictions`, cached by the set's content); the `full` row is a second
# full-data network (another seed), so it is graded on a difficulty it did not define.

# %%
cells = grid(["random", "idc-starts", "idc"], [IPC], [SEED], iterations=ITERATIONS)
run_grid(data, cells, out, preset=PRESET, epochs=EVAL_EPOCHS)
sets = {c.method: SyntheticSet.load(cell_folder(out, data, c, PRESET) / "synthetic.pt", device=data.device)
        for c in cells}
predictions = {}
for name, syn in sets.items():
    protocol = preset_protocol(PRESET, data.name, name, **({"epochs": EVAL_EPOCHS} if EVAL_EPOCHS else {}))
    predictions[(name, SEED)] = set_predictions(data, *syn.decoded(), seed=SEED, recipe=protocol.recipe,
                                                cache_dir=cache)
predictions[("full", SEED)] = full_predictions(data, REFERENCE_EPOCHS, REFERENCE_WIDTH, SEED + 1, cache_dir=cache)
pd.Series({name: 100 * (p != data.y_train.cpu()).float().mean().item() for (name, _), p in predictions.items()},
          name="error on the real training images (%)").round(2).to_frame()

# %% [markdown]
# ## 3. Error rate by difficulty, against the random set
#
# The real training images are cut into ten bins of loss per class (each holding a tenth of every class);
# per bin, each set's network's error rate, and that error minus the random set's. Top: how many images
# each bin holds (log axis). A set that learned the easy images and not the hard ones sits below random on
# the left and at or above it on the right.

# %%
loss_errors = error_table(data.y_train, loss, predictions, score_name="loss")
fig = plot_error_by_difficulty(loss_errors)

# %% [markdown]
# The same by forgetting count (never-learned images in the last bin), and the numbers: each set's error on
# the easy and the hard images, both minus random's, and their difference (`contrast`; positive is the
# easy-sample bias).

# %%
forget_errors = error_table(data.y_train, forgetting, predictions, never_learned=never_learned,
                            score_name="forgetting")
fig = plot_error_by_difficulty(forget_errors)

# %%
numbers = pd.concat([error_numbers(loss_errors), error_numbers(forget_errors)], ignore_index=True)
numbers.pivot_table(index=["figure", "set"], columns="metric", values="value").round(2)

# %% [markdown]
# ## 4. Gradient alignment by difficulty
#
# A distiller sees a freshly initialised network. At such a network, the cosine between each set's
# per-class gradient and every real image's own gradient, averaged by difficulty decile (0 = easiest).
# The `full` curve is the class gradient of all real images of the class: the most any set could align
# with. If a set's gradient speaks for the easy images, its cosine falls from left to right faster than
# the full data's.

# %%
torch.manual_seed(SEED)
probe = get_network("convnet", data.channels, data.num_classes, data.im_size).to(data.device)
alignment = alignment_table(probe, data, {name: syn.decoded() for name, syn in sets.items()}, loss,
                            max_per_class=MAX_PER_CLASS, seed=SEED)
fig = plot_alignment(alignment)

# %%
alignment_numbers(alignment).pivot_table(index="set", columns="metric", values="value").round(3)

# %% [markdown]
# ## 5. Where each set sits among the real images
#
# The reference network's features of a stratified sample of real images, mapped to 2-D (UMAP, or PCA as
# the fast fallback) fitted on the real images alone; every set's images are placed into that map. Real
# points are coloured by their difficulty within their class and stay visible under each set. The number:
# how hard the ten nearest real images of each set image are (percentile within the class; 50 = typical).

# %%
embedding = embedding_sets_table(reference, data, {(name, SEED): syn for name, syn in sets.items()}, loss,
                                 method=EMBEDDING, max_real=MAX_REAL, seed=SEED, cache_dir=cache)
fig = plot_embedding_sets(embedding)

# %%
embedding_numbers(embedding).pivot_table(index="set", columns="metric", values="value").round(1)

# %% [markdown]
# ## What to take away
#
# Read the numbers, not the premise: a set shows the easy-sample bias only where it errs more than the
# random set on the hard images than on the easy ones, and where its gradient leans to the easy images more
# than the full data's does. One seed on digits says little; `docs/diagnosis.md` has the Fashion-MNIST
# measurement over three seeds with intervals, and `02_sequential_distillation` shows DASM, which matches
# later segments against harder images on purpose.
