# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # The easy-sample bias: what a distilled set does not teach
#
# Distilled sets stop improving as the budget grows: on Fashion-MNIST, IDC reaches 86.0% at
# 10 images per class and only 86.2% at 50. This notebook reproduces the diagnosis behind
# DASM in three views, each a tidy table first and a figure drawn from it:
#
# 1. **Difficulty histograms.** Score every real training sample by how hard it is for a
#    network trained on *all* the data (its loss, and how often it is forgotten during
#    training). Then train a network on the distilled set and split the histogram into the
#    samples it gets right and wrong: the wrong ones pile up at the hard end.
# 2. **Gradient alignment.** Gradient matching makes the synthetic set's gradient point
#    where the *average* real gradient points, and the average is dominated by the many easy
#    samples. The cosine between the synthetic gradient and each real sample's gradient,
#    by difficulty decile, shows it.
# 3. **Embeddings.** Where the synthetic images sit among the real ones in a network's
#    feature space (UMAP, or PCA as the fast fallback), real points coloured by difficulty.
#
# Everything here uses `dasm.difficulty` and `dasm.analysis`; `dasm figures` (the
# command) writes the same figures as PNG/PDF with their CSV tables.

# %% tags=["parameters"]
DATASET = "digits"          # "digits" (bundled) or "fashion-mnist"
IPC = 10                    # images per class of the distilled set
ITERATIONS = None           # distillation iterations; None: the preset's budget
REFERENCE_EPOCHS = 20       # training of the full-data network that defines difficulty
FORGETTING_EPOCHS = 20      # training run whose forgetting events are counted
SET_EPOCHS = 300            # training of a network on each small set
MAX_PER_CLASS = None        # real samples per class in the gradient alignment (None: all)
EMBEDDING = "umap"          # "umap" or "pca" (fast; no numba compilation)
MAX_REAL = 2000             # real points in the embedding
SEED = 0
PRESET = "cpu"              # "cpu" (laptop budget) or "paper" (published settings, for a GPU)
OUT = "../data/runs/nb01"   # run folders and cached embeddings (relative to notebooks/)
DEVICE = "auto"             # "auto", "cpu" or "cuda"

# %%
# %matplotlib inline
from pathlib import Path

import pandas as pd
import torch

from dasm.analysis.alignment import alignment_summary, gradient_alignment, plot_alignment
from dasm.analysis.embeddings import embedding_table, plot_embedding
from dasm.analysis.histograms import difficulty_table, histogram_counts, plot_difficulty_histogram, train_on_set
from dasm.data import load_dataset
from dasm.device import resolve_device
from dasm.difficulty import forgetting_scores, reference_network, score_samples
from dasm.nets import get_network
from dasm.runs import distill_run

out = Path(OUT) / f"{DATASET}-ipc{IPC}"
data = load_dataset(DATASET, device=resolve_device(DEVICE))
data

# %% [markdown]
# ## 1. How hard is each real sample?
#
# Difficulty is measured against a **reference network** trained on all the real training
# data (`reference_network`: a fresh ConvNet, the evaluation recipe, DSA augmentation).
# Two scores, both "higher = harder":
#
# - **loss**: the reference network's cross-entropy on the sample after training
#   (`score_samples("loss", ...)`);
# - **forgetting** (Toneva et al. 2019): during one training run, how many times the
#   sample goes from classified right to wrong (`forgetting_scores`). Samples the run never
#   gets right at all are flagged *never learned* and get their own bin below.

# %%
reference = reference_network(data, epochs=REFERENCE_EPOCHS, seed=SEED, progress=True)
loss = score_samples("loss", reference, data.x_train, data.y_train, data.normalize)
forgetting, never_learned = forgetting_scores(data, epochs=FORGETTING_EPOCHS, seed=SEED, progress=True)

scores = pd.DataFrame({"label": data.y_train.cpu().numpy(), "loss": loss.cpu().numpy(),
                       "forgetting": forgetting.cpu().numpy(), "never_learned": never_learned.cpu().numpy()})
scores.drop(columns="label").describe().T.round(3)

# %% [markdown]
# Most samples are easy: the loss is tiny for the bulk of the data and the hard samples
# form a long tail. With no synthetic set yet, `difficulty_table` holds one row per
# sample and the histogram shows the whole training set.

# %%
fig = plot_difficulty_histogram(difficulty_table(data, loss, score_name="loss"))

# %% [markdown]
# ## 2. A distilled set and a random coreset
#
# Distill an IDC set (or load it: `distill_run` reuses a finished run folder) and, as a
# baseline, select the same number of real images at random. `train_on_set` trains a fresh
# ConvNet on each set's decoded images with the evaluation recipe.

# %%
sets = {
    "random": distill_run(data, "random", IPC, out / "random", preset=PRESET, seed=SEED),
    "idc": distill_run(data, "idc", IPC, out / "idc", preset=PRESET, seed=SEED, iterations=ITERATIONS),
}
nets = {name: train_on_set(data, *syn.decoded(), epochs=SET_EPOCHS, seed=SEED) for name, syn in sets.items()}

# %% [markdown]
# ## 3. Difficulty histograms, split right / wrong
#
# `difficulty_table` builds one row per (real sample, set): its difficulty and whether the
# set's network classifies it correctly. The histograms are drawn from that table alone
# (`histogram_counts` is the binned version), so a saved CSV redraws the same figure.

# %%
loss_table = difficulty_table(data, loss, score_name="loss", sets=nets)
loss_table.groupby("set")["correct"].mean().rename("real train accuracy").to_frame()

# %%
fig = plot_difficulty_histogram(loss_table)

# %% [markdown]
# The same with forgetting counts; samples the scoring run never learned sit in the hatched
# bar on the right. The overlay compares the sets' *wrong* samples directly.

# %%
forgetting_table = difficulty_table(data, forgetting, never_learned, score_name="forgetting", sets=nets)
fig = plot_difficulty_histogram(forgetting_table)

# %%
fig = plot_difficulty_histogram(forgetting_table, overlay=True)

# %%
counts = histogram_counts(forgetting_table)
counts.pivot_table(index="bin_label", columns=["set", "correct"], values="count", sort=False)

# %% [markdown]
# ## 4. Gradient alignment by difficulty
#
# A distiller sees a freshly initialised network. At such a network, compare each set's
# per-class gradient with every real sample's own gradient (cosine), and average by decile
# of the loss score (0 = easiest). If the synthetic gradient speaks for the easy samples, the
# cosine falls from left to right. `MAX_PER_CLASS` subsamples the real data to save time.

# %%
torch.manual_seed(SEED)
probe = get_network("convnet", data.channels, data.num_classes, data.im_size).to(data.device)
alignment = pd.concat([gradient_alignment(probe, data, *syn.decoded(), loss, max_per_class=MAX_PER_CLASS,
                                          seed=SEED, set_name=name) for name, syn in sets.items()],
                      ignore_index=True)
alignment_summary(alignment).round(3)

# %%
fig = plot_alignment(alignment)

# %% [markdown]
# ## 5. Where the synthetic images sit
#
# Embed the reference network's features (`net.embed`) of a stratified sample of real images
# together with the distilled images in 2-D. Real points are coloured by difficulty, the
# synthetic images are drawn as large markers (one shape per segment; an IDC set has one).
# UMAP's first use compiles for ~15 s; the coordinates are cached under `OUT`.

# %%
embedding = embedding_table(reference, data, sets["idc"], loss, method=EMBEDDING, max_real=MAX_REAL,
                            seed=SEED, cache_dir=out / "cache")
embedding.groupby("kind").size().rename("points").to_frame()

# %%
fig = plot_embedding(embedding, title=f"IDC ({IPC} IPC) among real {DATASET}, by difficulty")

# %% [markdown]
# The same embedding coloured by class (synthetic markers take their class's colour): do the
# synthetic images sit in the dense centre of their class or reach out to its fringe?
# (`thumbnails=sets["idc"].images` draws the images themselves instead of markers.)

# %%
fig = plot_embedding(embedding, color_by="label", title=f"IDC ({IPC} IPC) among real {DATASET}, by class")

# %% [markdown]
# ## What to take away
#
# The distilled set's network misses mostly the hard tail of the real data, and its
# gradient agrees best with the easy samples'. Adding more images of the same kind mostly
# re-teaches what the set already teaches; that is the saturation `03_saturation_over_ipc`
# measures. DASM (`02_sequential_distillation`) distills later segments against harder
# samples on purpose.
