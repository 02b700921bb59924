"""dasm.analysis.embeddings: table shape and columns, determinism (PCA and UMAP), the cache, the plot."""

import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.figure import Figure
from matplotlib.offsetbox import AnnotationBbox

from dasm.analysis import embeddings
from dasm.analysis.embeddings import embedding_table, plot_embedding, stratified_sample
from dasm.nets import get_network
from dasm.synthetic import SyntheticSet


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return get_network("convnet", 1, 10, (8, 8), width=16).eval()


@pytest.fixture(scope="module")
def two_segments(digits):
    """A 2-segment set of real images, 2 per class in each segment (segments grouped by class)."""
    first = torch.cat([ix[:2] for ix in digits.class_index])
    second = torch.cat([ix[2:4] for ix in digits.class_index])
    idx = torch.cat([first, second])
    return SyntheticSet(digits.x_train[idx].clone(), digits.y_train[idx].clone(), 10,
                        segments=[(0, 20), (20, 40)], meta={"dataset": "digits", "method": "random"})


@pytest.fixture(scope="module")
def scores(digits):
    return torch.rand(len(digits.y_train), generator=torch.Generator().manual_seed(1))


def test_stratified_sample_is_exact_seeded_and_proportional(digits):
    idx = stratified_sample(digits.y_train, 100, seed=3)
    assert len(idx) == 100 and len(torch.unique(idx)) == 100
    assert torch.equal(idx, stratified_sample(digits.y_train, 100, seed=3))
    assert not torch.equal(idx, stratified_sample(digits.y_train, 100, seed=4))
    counts = torch.bincount(digits.y_train[idx], minlength=10)
    assert counts.min() >= 9 and counts.max() <= 11
    assert len(stratified_sample(digits.y_train, 10**6)) == len(digits.y_train)


def test_table_shape_columns_and_segments(net, digits, two_segments, scores):
    t = embedding_table(net, digits, two_segments, scores=scores, method="pca", max_real=150)
    assert list(t.columns) == ["kind", "index", "label", "score", "segment", "x", "y"]
    assert len(t) == 150 + 40
    real, syn = t[t["kind"] == "real"], t[t["kind"] == "synthetic"]
    assert len(real) == 150 and len(syn) == 40
    assert torch.equal(torch.tensor(real["label"].to_numpy()), digits.y_train[torch.tensor(real["index"].to_numpy())])
    assert np.allclose(real["score"], scores[torch.tensor(real["index"].to_numpy())].numpy())
    assert real["segment"].isna().all() and syn["score"].isna().all()
    assert syn["index"].tolist() == list(range(40))
    assert syn["segment"].tolist() == [1.0] * 20 + [2.0] * 20
    assert syn["label"].tolist() == two_segments.labels.tolist()
    assert np.isfinite(t[["x", "y"]].to_numpy()).all()


def test_real_only_and_bad_scores(net, digits):
    t = embedding_table(net, digits, method="pca", max_real=50)
    assert len(t) == 50 and (t["kind"] == "real").all() and t["score"].isna().all()
    with pytest.raises(ValueError, match="one score per training sample"):
        embedding_table(net, digits, scores=torch.zeros(5), method="pca")
    with pytest.raises(ValueError, match="umap, pca"):
        embedding_table(net, digits, method="tsne")


def test_pca_is_deterministic_and_seed_picks_the_sample(net, digits, two_segments):
    a = embedding_table(net, digits, two_segments, method="pca", max_real=120, seed=0)
    b = embedding_table(net, digits, two_segments, method="pca", max_real=120, seed=0)
    pd.testing.assert_frame_equal(a, b)
    c = embedding_table(net, digits, two_segments, method="pca", max_real=120, seed=1)
    assert a["index"].tolist() != c["index"].tolist()


def test_umap_is_deterministic_with_a_seed(net, digits, two_segments):
    a = embedding_table(net, digits, two_segments, method="umap", max_real=160, seed=0)
    b = embedding_table(net, digits, two_segments, method="umap", max_real=160, seed=0)
    assert len(a) == 200
    np.testing.assert_array_equal(a[["x", "y"]].to_numpy(), b[["x", "y"]].to_numpy())
    assert a[["x", "y"]].std().min() > 0  # spread out, not collapsed


def test_cache_hit_reuses_the_table(net, digits, two_segments, scores, tmp_path, monkeypatch):
    first = embedding_table(net, digits, two_segments, scores=scores, method="pca", max_real=100,
                            cache_dir=tmp_path)
    assert len(list(tmp_path.glob("embedding-pca-*.csv"))) == 1

    def boom(*args, **kwargs):
        raise AssertionError("recomputed the embedding despite a cache hit")

    monkeypatch.setattr(embeddings, "_embed_2d", boom)
    again = embedding_table(net, digits, two_segments, scores=scores, method="pca", max_real=100,
                            cache_dir=tmp_path)
    pd.testing.assert_frame_equal(first, again)
    with pytest.raises(AssertionError, match="recomputed"):  # other inputs (another seed) miss the cache
        embedding_table(net, digits, two_segments, method="pca", max_real=100, seed=5, cache_dir=tmp_path)


def test_plot_colour_bar_and_one_legend_entry_per_segment(net, digits, two_segments, scores):
    t = embedding_table(net, digits, two_segments, scores=scores, method="pca", max_real=100)
    fig = plot_embedding(t, score_label="loss")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert len(fig.axes) == 2 and fig.axes[1].get_ylabel() == "loss"  # the colour bar
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert labels == ["segment 1 (2 IPC)", "segment 2 (2 IPC)"]
    assert "(a.u.)" in ax.get_xlabel() and "(a.u.)" in ax.get_ylabel()
    assert not any(isinstance(a, AnnotationBbox) for a in ax.get_children())
    marks = [c for c in ax.collections if c.get_zorder() == 3]  # the synthetic markers, one per segment
    assert len(marks) == 2 and len({tuple(c.get_facecolor()[0]) for c in marks}) == 2
    syn = t[t["kind"] == "synthetic"]
    big = pd.concat([t] + [syn] * 30, ignore_index=True)  # a large set: smaller markers, real points stay visible
    big_marks = [c for c in plot_embedding(big).axes[0].collections if c.get_zorder() == 3]
    assert big_marks[0].get_sizes()[0] < marks[0].get_sizes()[0] / 4
    by_label = plot_embedding(t, color_by="label")
    assert by_label.axes[1].get_ylabel() == "class label"


def test_plot_thumbnails_add_annotation_boxes(net, digits, two_segments):
    t = embedding_table(net, digits, two_segments, method="pca", max_real=60)
    fig = plot_embedding(t, color_by="label", thumbnails=two_segments.images, zoom=0.5)
    boxes = [a for a in fig.axes[0].get_children() if isinstance(a, AnnotationBbox)]
    assert len(boxes) == 40
    with pytest.raises(ValueError, match="thumbnails"):
        plot_embedding(t, thumbnails=two_segments.images[:3])


def _real_set(digits, start: int, method: str, seed: int = 0) -> SyntheticSet:
    idx = torch.cat([ix[start:start + 2] for ix in digits.class_index])
    return SyntheticSet(digits.x_train[idx].clone(), digits.y_train[idx].clone(), 10,
                        meta={"dataset": "digits", "method": method, "seed": seed, "indices": idx})


def test_sets_table_maps_the_real_data_alone_and_places_every_set_into_it(net, digits, scores):
    from dasm.analysis.embeddings import SETS_COLUMNS, embedding_sets_table

    sets = {("random", 0): _real_set(digits, 0, "random"), ("idc-starts", 0): _real_set(digits, 2, "idc-starts"),
            ("idc", 0): _real_set(digits, 4, "idc")}
    t = embedding_sets_table(net, digits, sets, scores, method="pca", max_real=10**6, neighbours=1)
    assert list(t.columns) == SETS_COLUMNS
    real = t[t["kind"] == "real"]
    assert len(real) == len(digits.y_train) and (real["set"] == "real").all() and real["seed"].isna().all()
    assert set(t.loc[t["kind"] == "synthetic", "set"]) == {"random", "idc-starts", "idc"}
    # the map is the real data's: the real points do not move when the sets change
    alone = embedding_sets_table(net, digits, {("idc", 0): sets[("idc", 0)]}, scores, method="pca", max_real=10**6)
    assert np.allclose(alone.loc[alone["kind"] == "real", ["x", "y"]], real[["x", "y"]])
    # a set of real images sits on its own real points, and its nearest real neighbour is itself
    syn = t[t["set"] == "random"]
    own = real.set_index("index").loc[sets[("random", 0)].meta["indices"].numpy()]
    assert np.allclose(syn[["x", "y"]].to_numpy(), own[["x", "y"]].to_numpy(), atol=1e-9)
    assert np.allclose(syn["percentile"].to_numpy(), own["percentile"].to_numpy())
    # neighbours are of the image's own class: images relabelled c+1 sit by their nearest real c+1, not themselves
    from dasm.coreset import embed_dataset

    base = sets[("random", 0)]
    swapped = SyntheticSet(base.images.clone(), (base.labels + 1) % 10, 10, meta={"dataset": "digits", "seed": 0})
    got = embedding_sets_table(net, digits, {("idc", 0): swapped}, scores, method="pca", max_real=10**6, neighbours=1)
    got = got[got["kind"] == "synthetic"]["percentile"].to_numpy()
    f_syn = embed_dataset(net, swapped.images, digits.normalize).double()
    for i, c in enumerate(swapped.labels.tolist()):
        mine = real[real["label"] == c]
        f_real = embed_dataset(net, digits.x_train[torch.tensor(mine["index"].to_numpy())], digits.normalize)
        assert got[i] == pytest.approx(mine["percentile"].to_numpy()[torch.cdist(f_syn[i:i + 1], f_real.double()).argmin()])
    # within-class percentiles: 0 for the easiest image of a class, 100 for the hardest
    first = real[real["label"] == 0]
    assert first.loc[first["score"].idxmin(), "percentile"] == 0.0 and first["percentile"].max() == 100.0


def test_sets_numbers_and_panels_keep_the_real_points_visible(net, digits, scores, tmp_path, monkeypatch):
    from dasm.analysis.embeddings import embedding_numbers, embedding_sets_table, plot_embedding_sets

    sets = {(m, s): _real_set(digits, 2 * k + 6 * s, m, s) for s in (0, 1)
            for k, m in enumerate(("random", "idc-starts", "idc"))}
    t = embedding_sets_table(net, digits, sets, scores, method="pca", max_real=200, cache_dir=tmp_path)
    numbers = embedding_numbers(t)
    gap = numbers[(numbers["baseline"] == "random")].set_index(["set", "seed"])["value"]
    pct = numbers[(numbers["baseline"] == "")].set_index(["set", "seed"])["value"]
    assert gap[("random", 0)] == 0.0
    assert gap[("idc", 1)] == pytest.approx(pct[("idc", 1)] - pct[("random", 1)])
    assert pct[("idc", 0)] == pytest.approx(t[(t["set"] == "idc") & (t["seed"] == 0)]["percentile"].mean())
    path = tmp_path / "emb.csv"
    t.to_csv(path, index=False)
    fig = plot_embedding_sets(pd.read_csv(path))
    panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert [ax.get_title().split("\n")[0] for ax in panels] == ["random", "idc-starts", "idc"]   # controls first
    for ax in panels:
        real, *marks = sorted(ax.collections, key=lambda c: c.get_zorder())
        assert len(real.get_offsets()) == 200 and real.get_zorder() < marks[0].get_zorder()   # real first, under
        assert len(marks[0].get_offsets()) == 20                                                # seed 0 only
        assert (marks[0].get_edgecolor()[:, :3] == 0).all()                                    # outlined
    assert len(list(tmp_path.glob("embedding-sets-pca-*.npy"))) == 1
    monkeypatch.setattr(embeddings, "_fit_on_real", lambda *a: (_ for _ in ()).throw(AssertionError("refitted")))
    again = embedding_sets_table(net, digits, sets, scores, method="pca", max_real=200, cache_dir=tmp_path)
    pd.testing.assert_frame_equal(again, t)                                   # the cache: nothing refitted
    matplotlib_close()


def matplotlib_close():
    import matplotlib.pyplot as plt

    plt.close("all")


@pytest.mark.slow
def test_umap_leaves_torchs_thread_count_as_it_was():
    """numba sets the OpenMP thread count it shares with torch on its first parallel call; an embedding
    must not change the threads of the torch work after it (checked in a fresh process, where that
    first call happens)."""
    import os
    import subprocess
    import sys

    script = ("import numpy as np, torch\n"
              "from dasm.analysis.embeddings import _umap_2d\n"
              "torch.set_num_threads(1)\n"
              "_umap_2d(np.random.default_rng(0).random((60, 5), dtype=np.float32), 0)\n"
              "print(torch.get_num_threads())\n")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "2"}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-1] == "1"
