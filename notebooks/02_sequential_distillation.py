# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # DASM: distilling in segments, from easy to hard
#
# **Difficulty-Aligned Sequential Matching** distills the synthetic set in `SEGMENTS`
# segments, one after another. What each new segment is matched against depends on what
# the earlier segments already teach:
#
# 1. **Probe.** Train a network $M_{k-1}$ on the segments distilled so far,
#    $S_1 \cup \dots \cup S_{k-1}$, with the evaluation recipe (the first segment has none).
# 2. **Score.** Score every real training image with the probe (by default its loss:
#    higher = harder for what the set teaches so far).
# 3. **Select.** Per class, keep a *window* of those scores: a quantile window (half of each
#    class by default) that slides from the easiest samples for the first segment to the
#    hardest for the last.
# 4. **Distill.** Match segment $S_k$ against that pool only, with the base distiller
#    (IDC). The earlier segments stay frozen but take part in every match, so the new
#    images learn what the old ones do not already cover.
#
# `SEGMENTS = 1` is exactly the plain base distiller. The ideas are in `dasm/sequential.py`;
# from a notebook, the `DistillPanel` widget runs it with live progress.
#
# What you should see: the panel's segments, each with its probe's accuracy and its difficulty
# window moving from easy to hard, the loss per segment and the images as they are learned; then
# each segment's window drawn over its class's score histogram, and the finished set evaluated. On
# digits and on Fashion-MNIST at this project's CPU budget DASM ends level with plain IDC
# (`docs/results.md`): the notebook shows how it works, not that it wins.
#
# <!-- time:start -->
# Measured time: digits 1.1 min (quick profile, 2-core x86_64 CPU, 2026-12-06); Fashion-MNIST not measured yet (`python -m benchmarks.notebooks 02_sequential_distillation --dataset fashion-mnist`).
# <!-- time:end -->

# %% tags=["parameters"]
DATASET = "digits"          # "digits" (bundled) or "fashion-mnist"
IPC = 10                    # images per class in total (over all segments)
SEGMENTS = 5                # segments distilled one after another
ITERATIONS = None           # distillation iterations in total; None: the preset's budget
PROBE_EPOCHS = None         # training epochs of each probe; None: the preset's (100 on "cpu")
EVAL_EPOCHS = None          # epochs of the evaluation training; None: the preset's (300 on "cpu")
AUTORUN = True              # start the run from the notebook (False: press Run in the panel)
PRESET = "cpu"              # "cpu" (laptop budget) or "paper" (published settings, for a GPU)
OUT = "../data/runs/nb02"   # run folders (relative to notebooks/)
DEVICE = "auto"             # "auto", "cpu" or "cuda"

# %%
# %matplotlib inline
import matplotlib.pyplot as plt
import pandas as pd

from dasm.analysis.grids import plot_class_grid
from dasm.analysis.style import dasm_style
from dasm.widgets import ComparePanel, DistillPanel

# %% [markdown]
# ## 1. The panel
#
# The panel holds every setting of the run, a Run and a Stop button, progress bars (overall
# and per segment), a status line saying what the run does now (loading the data, training a
# probe, distilling a segment, evaluating), the live matching loss, the synthetic images as they
# are learned and one row per finished segment: the probe's accuracy, the difficulty window and
# the size of the real pool it selected. It calls the same `dasm.runs.distill_run` as the
# `dasm distill` command. After the distillation the set is evaluated once.
#
# Each run gets its own folder under `OUT`, named by every setting
# (`<dataset>-<method>-ipc<ipc>-seed<seed>-<key>`, the line above the Run button shows it): change
# any setting and press **Run** for a new run; press it with the same settings and a finished run
# is loaded, a stopped one resumes. An empty number box (iterations, epochs) keeps the preset's
# value, shown greyed in it. Settings that cannot run (IPC 0, more segments than IPC, an IPC
# larger than the dataset's classes) are refused before any data loads, and the settings are
# locked while a run goes. From code: `panel.set(score="el2n", iterations=None)`, then `panel.run()`.
#
# Change the settings and press **Run**, or let the next cell start it.

# %%
panel = DistillPanel(dataset=DATASET, method="dasm", ipc=IPC, segments=SEGMENTS, preset=PRESET, device=DEVICE,
                     seed=0, iterations=ITERATIONS, out=OUT, eval_epochs=EVAL_EPOCHS, probe_epochs=PROBE_EPOCHS)
panel

# %% [markdown]
# With `AUTORUN`, the notebook presses Run itself and waits for the run to end (the panel
# above keeps updating meanwhile). While a cell is executing the kernel does not see button
# clicks, so here the kernel's interrupt (■) is the Stop button: the run stops after its current
# iteration, keeps what it learned, and the next Run resumes it. Without `AUTORUN`, press Run
# above, then run the cells from here on: `panel.wait()` waits for a run under way ("Run All"
# with `AUTORUN = False` stops here and asks).

# %%
if AUTORUN:
    panel.run(block=True)
else:
    panel.wait()
if panel.error is not None:
    raise panel.error
if panel.result is None:
    raise RuntimeError("No run has finished yet: press Run in the panel above, wait for 'Done', "
                       "then run the cells from here on.")
syn = panel.result
accuracy = "not evaluated" if panel.accuracy is None else f"test accuracy {panel.accuracy:.1f}%"
print(f"{panel.out_dir}: {len(syn.labels)} stored images in segments {syn.segments}; {accuracy}")

# %% [markdown]
# ## 2. The segments side by side
#
# `syn.segments` holds each segment's index range in the stored images; `syn.segment(k)` is
# the slice of segment `k`. One column per segment, one row per class. The first segment is
# plain IDC against all the real data (there is no probe yet); every later one was matched
# against a harder window of each class, the last against the hardest. By default a joint
# pass then refines all segments together against all real data (40% of the iterations), so
# these are the images after it; each segment keeps its place in the set.


# %%
k_segments = len(syn.segments)
with dasm_style():
    fig, axes = plt.subplots(1, k_segments, figsize=(1.2 + 1.6 * k_segments, 4.2), squeeze=False)
    for k, ax in enumerate(axes[0]):
        part = syn.segment(k)
        plot_class_grid(syn.images[part], syn.labels[part], panel.data.classes, ax=ax, names=k == 0,
                        title=f"segment {k + 1}\n({syn.segment_ipcs()[k]} IPC)")
    fig.suptitle("DASM segments in the order they were distilled (later: matched against harder images)")
    fig.tight_layout()

# %% [markdown]
# ## 3. What each segment chose
#
# The run folder's `segments.csv` logs every segment: its images per class (`ipc`), the
# probe's accuracy on the real training data, the quantile window of difficulty
# (`quantile_lo` .. `quantile_hi`), the size of the real pool, the scores inside it against
# all scores, the final matching loss and the time. The joint pass is the last row
# (`stage` = `joint`). (`panel.segment_rows` holds the same rows as dictionaries while the
# panel runs.)

# %%
segments = pd.read_csv(panel.out_dir / "segments.csv")
columns = ["segment", "stage", "ipc", "probe_real_acc", "quantile_lo", "quantile_hi", "pool_size", "score_mean",
           "score_mean_all", "final_loss", "seconds"]
segments[[c for c in columns if c in segments.columns]]

# %% [markdown]
# The difficulty windows: each bar spans the quantiles of each class's probe scores that
# segment was matched against (0 = the easiest sample of a class, 1 = the hardest). The first
# segment has no probe yet (there is no synthetic data to train one on), so nothing is ranked
# and it is matched against all real images (grey bar), like the joint pass at the end.

# %%
with dasm_style():
    fig, ax = plt.subplots(figsize=(6, 0.5 * len(segments) + 1.2))
    for _, row in segments.iterrows():
        k = int(row["segment"])
        scored = "score_mean" in row and pd.notna(row["score_mean"])
        lo, hi = (row["quantile_lo"], row["quantile_hi"]) if scored else (0.0, 1.0)
        ax.barh(k + 1, hi - lo, left=lo, color="#d55e00" if scored else "#bbbbbb", height=0.6)
        joint = row.get("stage") == "joint"
        note = "" if scored else " (joint pass: all)" if joint else " (no probe: all)"
        ax.text(hi + 0.01, k + 1, f"{int(row['pool_size'])} real images{note}", va="center", fontsize=8)
    ax.set_xlim(0, 1.45)
    ax.set_xticks([0, 0.25, 0.5, 0.75, 1.0])
    ax.invert_yaxis()
    ax.set_yticks(range(1, len(segments) + 1),
                  ["joint" if stage == "joint" else str(k + 1) for k, stage in zip(segments.segment, segments.stage)])
    ax.set_xlabel("difficulty quantile within each class (0 = easiest)")
    ax.set_ylabel("segment")
    ax.set_title("The real pool of each segment")
    fig.tight_layout()

# %% [markdown]
# The same windows over the scores themselves: for one class (`CLASS` below), each probed segment's
# histogram of the probe's scores of that class's real images (log counts), the part its pool kept in
# colour. Each segment's probe is trained on the segments before it, so each histogram is a new
# scoring; the window moves right, toward what the set so far gets wrong. (The scores and pools are in
# `segment<k>/selection.pt`.)

# %%
import torch

CLASS = 0
probed = [k for k in range(k_segments)
          if torch.load(panel.out_dir / f"segment{k}" / "selection.pt", weights_only=False)["scores"] is not None]
with dasm_style():
    fig, axes = plt.subplots(1, max(len(probed), 1), figsize=(3.2 * max(len(probed), 1), 2.8), squeeze=False,
                             sharey=True)
    for ax, k in zip(axes[0], probed):
        sel = torch.load(panel.out_dir / f"segment{k}" / "selection.pt", weights_only=False)
        members = panel.data.class_index[CLASS].cpu()
        scores = sel["scores"][members].float()
        kept = scores[torch.isin(members, sel["pools"][CLASS])]
        bins = torch.linspace(float(scores.min()), float(scores.max()), 31).tolist()
        ax.hist(scores.tolist(), bins=bins, color="#bbbbbb", label="all of the class")
        ax.hist(kept.tolist(), bins=bins, color="#d55e00", label="the segment's pool")
        ax.set_yscale("log")
        ax.set_title(f"segment {k + 1}")
        ax.set_xlabel("probe loss (higher = harder)")
    axes[0][0].set_ylabel(f"real images of class {panel.data.classes[CLASS]!r}")
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()

# %% [markdown]
# ## 4. Evaluation
#
# The panel evaluated the finished set once (one seed, the preset's protocol); the rows are
# in the run's `results.csv` next to the distillation time. `dasm evaluate <folder>` or
# `dasm.runs.evaluate_run` adds seeds and architectures later, and
# `03_saturation_over_ipc` compares DASM with IDC and coresets over IPC.

# %%
pd.read_csv(panel.out_dir / "results.csv")[["method", "ipc", "seed", "arch", "metric", "value", "protocol"]]

# %% [markdown]
# ## 5. Every run of the panel, side by side
#
# `ComparePanel` lists the run folders under `OUT` (named by dataset, method, IPC and seed)
# and draws the saturation curve, the results table or the difficulty histograms of those
# selected. It draws in the background and redraws on every change; full-data rows
# (`dasm.runs.full_data_run`) under the same folder add the full-data line, as in
# `03_saturation_over_ipc`. Run this cell again after more runs of the panel above.

# %%
compare = ComparePanel([OUT])
compare.wait()
compare
