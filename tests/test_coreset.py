"""Coreset selection: layout, known answers on hand-made features, coverage/herding quality, errors."""

import pytest
import torch

from dasm import coreset
from dasm.coreset import (CORESET_METHODS, embed_dataset, herding_indices,
                          kcenter_indices, random_indices, score_indices, select_coreset)
from dasm.data import Dataset


def toy(labels: list[int]) -> Dataset:
    """A dataset whose only interesting part is its labels (features are passed by hand)."""
    y = torch.tensor(labels)
    x = torch.zeros(len(y), 1, 2, 2)
    return Dataset("toy", x, y, x[:1], y[:1], tuple(str(c) for c in range(int(y.max()) + 1)), (0.0,), (1.0,))


@pytest.fixture(scope="module")
def pixels(digits):
    return digits.x_train.flatten(1)


@pytest.fixture(scope="module")
def loss_like(digits):
    return torch.rand(len(digits.y_train), generator=torch.Generator().manual_seed(0))


def assert_layout(data: Dataset, idx: torch.Tensor, ipc: int) -> None:
    assert idx.dtype == torch.long and idx.shape == (ipc * data.num_classes,)
    assert len(torch.unique(idx)) == len(idx), "duplicate picks"
    expected = torch.arange(data.num_classes).repeat_interleave(ipc)
    assert torch.equal(data.y_train[idx], expected), "not grouped class by class / wrong class"


@pytest.mark.parametrize("method", CORESET_METHODS + ("score",))
@pytest.mark.parametrize("ipc", [1, 7])
def test_every_method_gives_ipc_per_class_grouped(digits, pixels, loss_like, method, ipc):
    idx = select_coreset(digits, method, ipc, features=pixels, scores=loss_like)
    assert_layout(digits, idx, ipc)


def test_largest_ipc_takes_whole_smallest_class(digits, pixels):
    n = min(digits.class_counts())
    for idx in (herding_indices(digits, n, pixels), kcenter_indices(digits, n, pixels)):
        assert_layout(digits, idx, n)


# ------------------------------------------------------------------------------------ herding

def test_herding_known_answer_1d():
    # Class 0 at positions 0, 2, 4, 6, 8 (interleaved with class 1) with values 0, 4, 5, 6, 20: mean 7.
    # Step 1: nearest the mean is 6. Step 2: (6+f)/2 closest to 7 -> f=5. Step 3: (11+f)/3 -> f=4.
    # Step 4: (15+f)/4 -> f=20 (8.75) beats f=0 (3.75). Step 5: the last one, 0.
    values = torch.tensor([0.0, 1.0, 4.0, 1.5, 5.0, 2.0, 6.0, 9.0, 20.0, 9.5])
    data = toy([0, 1] * 5)
    idx = herding_indices(data, 5, values)
    assert idx[:5].tolist() == [6, 4, 2, 8, 0]
    # Class 1 (values 1, 1.5, 2, 9, 9.5; mean 4.6): first pick 2 (|2-4.6|=2.6 < |9-4.6|=4.4), then 9 -> mean 5.5.
    assert idx[5:7].tolist() == [5, 7]


def test_herding_first_pick_is_nearest_to_class_mean(digits, pixels):
    idx = herding_indices(digits, 3, pixels)
    for c, ix in enumerate(digits.class_index):
        nearest = ix[(pixels[ix] - pixels[ix].mean(0)).norm(dim=1).argmin()]
        assert idx[3 * c] == nearest


# ------------------------------------------------------------------------------------ k-center

def test_kcenter_known_answer_2d():
    # A tight cluster at the origin and three far corners. The start is the point nearest the
    # mean (-0.32, -0.15): (0, 0). Then farthest-first: (-7,-7) at 9.9, (0,6) at 6, (5,0) at 5.
    pts = torch.tensor([[0.0, 0.0], [0.1, 0.0], [0.0, 0.1], [5.0, 0.0], [0.0, 6.0], [-7.0, -7.0]])
    data = toy([0] * 6 + [1] * 2)
    feats = torch.cat([pts, torch.tensor([[1.0, 1.0], [2.0, 2.0]])])
    idx = kcenter_indices(data, 2, feats)
    assert idx.tolist() == [0, 5, 6, 7]
    data1 = toy([0] * 6)
    assert kcenter_indices(data1, 4, pts).tolist() == [0, 5, 4, 3]


def _coverage(points: torch.Tensor, centres: torch.Tensor) -> float:
    """Largest distance from any point to its nearest centre (the k-center objective)."""
    return torch.cdist(points, centres).min(dim=1).values.max().item()


def _mean_gap(points: torch.Tensor, chosen: torch.Tensor) -> float:
    """Distance from the chosen points' mean to the class mean (what herding tracks)."""
    return (chosen.mean(0) - points.mean(0)).norm().item()


@pytest.mark.parametrize("select, objective", [(herding_indices, _mean_gap), (kcenter_indices, _coverage)],
                         ids=["herding-tracks-the-mean", "kcenter-covers-the-class"])
def test_each_coreset_beats_random_on_its_own_objective(digits, pixels, select, objective):
    ipc = 10
    chosen = select(digits, ipc, pixels).view(digits.num_classes, ipc)
    for seed in range(3):
        rand = random_indices(digits, ipc, seed=seed).view(digits.num_classes, ipc)
        for c, ix in enumerate(digits.class_index):
            assert objective(pixels[ix], pixels[chosen[c]]) < objective(pixels[ix], pixels[rand[c]])


def test_kcenter_starts_nearest_the_class_mean(digits, pixels):
    idx = kcenter_indices(digits, 2, pixels)
    for c, ix in enumerate(digits.class_index):
        assert idx[2 * c] == ix[torch.cdist(pixels[ix], pixels[ix].mean(0, keepdim=True)).argmin()]


# ------------------------------------------------------------------------------------ scores

@pytest.mark.parametrize("keep", ["hardest", "easiest", "middle"])
def test_score_indices_match_a_direct_sort(digits, loss_like, keep):
    ipc = 6
    idx = score_indices(digits, ipc, loss_like, keep=keep)
    assert_layout(digits, idx, ipc)
    for c, ix in enumerate(digits.class_index):
        s = loss_like[ix]
        asc = ix[torch.argsort(s)]
        got = idx[ipc * c: ipc * (c + 1)]
        if keep == "hardest":
            assert torch.equal(got, asc.flip(0)[:ipc])
            assert loss_like[got].min() >= s.sort(descending=True).values[ipc - 1]
        elif keep == "easiest":
            assert torch.equal(got, asc[:ipc])
        else:
            start = (len(ix) - ipc) // 2
            assert torch.equal(got, asc[start:start + ipc])
            assert loss_like[got].min() <= s.median() <= loss_like[got].max()


# ------------------------------------------------------------------------------------ determinism

def test_same_seed_same_indices(digits, pixels):
    for method in ("random", "kcenter"):
        a = select_coreset(digits, method, 5, seed=3, features=pixels)
        b = select_coreset(digits, method, 5, seed=3, features=pixels)
        assert torch.equal(a, b)
    assert not torch.equal(select_coreset(digits, "random", 5, seed=0), select_coreset(digits, "random", 5, seed=1))


# ------------------------------------------------------------------------------------ feature network

def test_feature_network_and_herding_end_to_end(digits, monkeypatch):
    # The dispatcher trains its own feature network when given no features; shrink it (width 16,
    # 2 epochs) and keep the net it built, to check the selection against that net's embedding.
    built = []
    real = coreset.feature_network

    def small(data, seed=0):
        built.append(real(data, epochs=2, seed=seed, width=16))
        return built[-1]

    monkeypatch.setattr(coreset, "feature_network", small)
    idx = select_coreset(digits, "herding", 4, seed=0)
    assert_layout(digits, idx, 4)
    (net,) = built
    assert not net.training
    feats = embed_dataset(net, digits.x_train, digits.normalize, batch_size=500)
    assert feats.shape == (len(digits.y_train), net.feature_dim) and not feats.requires_grad
    assert torch.allclose(feats, embed_dataset(net, digits.x_train, digits.normalize), atol=1e-5)
    assert torch.equal(idx, herding_indices(digits, 4, feats))
    net.train()
    embed_dataset(net, digits.x_train[:10], digits.normalize)
    assert net.training, "embed_dataset must restore the train/eval mode"


# ------------------------------------------------------------------------------------ errors

def test_ipc_too_large_names_the_largest(digits, pixels, loss_like):
    n = min(digits.class_counts())
    calls = [lambda: herding_indices(digits, n + 1, pixels), lambda: kcenter_indices(digits, n + 1, pixels),
             lambda: score_indices(digits, n + 1, loss_like), lambda: select_coreset(digits, "random", n + 1)]
    for call in calls:
        with pytest.raises(ValueError, match=f"largest IPC here is {n}"):
            call()


def test_wrong_feature_or_score_rows(digits, pixels, loss_like):
    n = len(digits.y_train)
    with pytest.raises(ValueError, match=f"expected {n}, got 10"):
        herding_indices(digits, 2, pixels[:10])
    with pytest.raises(ValueError, match=f"expected {n}, got {n - 1}"):
        select_coreset(digits, "kcenter", 2, features=pixels[1:])
    with pytest.raises(ValueError, match=f"expected {n}, got 5"):
        score_indices(digits, 2, loss_like[:5])


def test_nan_scores_unknown_keep_and_method(digits, pixels, loss_like):
    bad = loss_like.clone()
    bad[3] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        score_indices(digits, 2, bad)
    with pytest.raises(ValueError, match="hardest, easiest, middle"):
        score_indices(digits, 2, loss_like, keep="hard")
    with pytest.raises(ValueError, match="random, herding, kcenter"):
        select_coreset(digits, "gradmatch", 2)
    with pytest.raises(ValueError, match="needs `scores`"):
        select_coreset(digits, "score", 2)
    nan_feats = pixels.clone()
    nan_feats[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        kcenter_indices(digits, 2, nan_feats)
