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
