"""dasm.difficulty: forgetting events, score values against direct computation, averaging, errors."""

import pytest
import torch
import torch.nn.functional as F

from dasm.difficulty import (SCORES, ForgettingTracker, el2n_scores, forgetting_scores, grand_scores,
                             learnability_scores, loss_scores, margin_scores, score_samples, scores_from_logits)
from dasm.nets import get_network
from dasm.train import Recipe, predict, train_model


def _net(seed: int, arch: str = "convnet", **kw):
    torch.manual_seed(seed)
    kw = kw or {"width": 8}
    return get_network(arch, 1, 10, 8, **kw)


@pytest.fixture(scope="module")
def small(digits):
    """A few digits samples and the dataset's normalisation."""
    return digits.x_train[:40], digits.y_train[:40], digits.normalize


# ------------------------------------------------------------------------------ forgetting

def test_forgetting_tracker_counts_events_on_a_known_sequence():
    patterns = torch.tensor([[1, 0, 1, 0, 1],   # learned, forgotten twice
                             [0, 0, 1, 1, 1],   # learned late, never forgotten
                             [1, 1, 1, 1, 0],   # forgotten once, at the end
                             [0, 0, 0, 0, 0]],  # never learned
                            dtype=torch.bool)
    tracker = ForgettingTracker(4)
    g = torch.Generator().manual_seed(3)
    for t in range(5):
        order = torch.randperm(4, generator=g)
        # present the samples in shuffled order, split across two update() calls
        for part in (order[:2], order[2:]):
            tracker.update(part, patterns[part, t])
    assert tracker.counts().tolist() == [2.0, 0.0, 1.0, 0.0]
    assert tracker.never_learned().tolist() == [False, False, False, True]
    assert tracker.scores().tolist() == [2.0, 0.0, 1.0, 3.0]
    assert tracker.presentations().tolist() == [5, 5, 5, 5]
    assert tracker.scores().dtype == torch.float32


def test_forgetting_tracker_edge_cases():
    tracker = ForgettingTracker(3)
    assert tracker.scores().tolist() == [1.0, 1.0, 1.0]  # nothing ever learned: all tie at 0 + 1
    tracker.update(torch.tensor([0]), torch.tensor([False]))  # a first wrong presentation is no event
    tracker.update(torch.tensor([0]), torch.tensor([True]))
    assert tracker.counts().tolist() == [0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="repeats"):
        tracker.update(torch.tensor([1, 1]), torch.tensor([True, False]))
    with pytest.raises(ValueError, match=r"\[0, 2\]"):
        tracker.update(torch.tensor([3]), torch.tensor([True]))
    with pytest.raises(ValueError, match="2 entries but correct has 1"):
        tracker.update(torch.tensor([0, 1]), torch.tensor([True]))


def test_forgetting_scores_on_digits(digits):
    scores, never = forgetting_scores(digits, arch="convnet", epochs=2, seed=0, width=8)
    assert scores.shape == (1437,) and never.shape == (1437,)
    assert scores.dtype == torch.float32 and never.dtype == torch.bool
    assert torch.isfinite(scores).all()
    learned = scores[~never]
    assert 0 < len(learned) < 1437  # two epochs of a tiny net learn some samples, not all
    top = learned.max().item()
    assert (scores[never] == top + 1).all()  # never-learned samples rank just above every learned one
    assert (scores[~never] <= top).all() and (scores == scores.round()).all()
    # tensors + labels work too, and the same seed gives the same run
    x, y = digits.x_train[:256], digits.y_train[:256]
    a = forgetting_scores(x, y, arch="mlp", epochs=3, seed=1, normalize=digits.normalize, batch_size=32, width=16)
    b = forgetting_scores(x, y, arch="mlp", epochs=3, seed=1, normalize=digits.normalize, batch_size=32, width=16)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and a[0].shape == (256,)



def test_probe_forgetting_checks_every_real_sample_the_asked_number_of_times(digits, monkeypatch):
    """DASM's forgetting score: a probe trains on a small set; the whole real training split is checked
    ``checkpoints`` times, so a learned sample forgets at most checkpoints // 2 times; seeded, it repeats."""
    from dasm.difficulty import probe_forgetting
    from dasm.train import Recipe

    calls, update = [], ForgettingTracker.update
    monkeypatch.setattr(ForgettingTracker, "update", lambda self, ix, ok: (calls.append(len(ix)), update(self, ix, ok)))
    x, y, recipe = digits.x_train[::20], digits.y_train[::20], Recipe(epochs=6, batch_size=16)
    a = probe_forgetting(digits, x, y, recipe, seed=3, checkpoints=3, width=8)
    assert calls == [len(digits.y_train)] * 3 and a.shape == (len(digits.y_train),)
    learned = a[a < a.max()]
    assert len(learned) and learned.max() <= 1
    assert torch.equal(a, probe_forgetting(digits, x, y, recipe, seed=3, checkpoints=3, width=8))

# ------------------------------------------------------------------------------ net-based scores

def test_scores_match_direct_computation(small):
    x, y, norm = small
    net = _net(0)
    with torch.no_grad():
        logits = net(norm(x))
    expect_loss = F.cross_entropy(logits, y, reduction="none")
    expect_el2n = (logits.softmax(1) - F.one_hot(y, 10).float()).norm(dim=1)
    true = logits[torch.arange(len(y)), y]
    wrong = torch.stack([torch.cat([logits[i, :y[i]], logits[i, y[i] + 1:]]).max() for i in range(len(y))])
    expect_margin = wrong - true

    got = loss_scores(net, x, y, norm, batch_size=16)  # several chunks
    assert got.shape == (40,) and got.dtype == torch.float32
    torch.testing.assert_close(got, expect_loss, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(el2n_scores(net, x, y, norm, batch_size=7), expect_el2n, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(margin_scores(net, x, y, norm), expect_margin, atol=1e-5, rtol=1e-5)
    assert ((margin_scores(net, x, y, norm) > 0) == (logits.argmax(1) != y)).all()
    # the same scores from logits computed once (the probe's accuracy pass): equal bit for bit
    once = predict(net, x, norm)
    for score in ("loss", "el2n", "margin"):
        assert torch.equal(scores_from_logits(score, once, y), score_samples(score, net, x, y, norm))
    with pytest.raises(ValueError, match="not computed from logits"):
        scores_from_logits("grand", once, y)
    with pytest.raises(FloatingPointError, match="NaN"):
        scores_from_logits("loss", torch.full_like(once, float("nan")), y)


def test_grand_matches_autograd_of_last_layer(small):
    x, y, norm = small
    net = _net(1)
    net.eval()
    expected = []
    for i in range(6):
        net.zero_grad()
        loss = F.cross_entropy(net(norm(x[i:i + 1])), y[i:i + 1])
        gw, gb = torch.autograd.grad(loss, [net.classifier.weight, net.classifier.bias])
        expected.append(torch.sqrt(gw.pow(2).sum() + gb.pow(2).sum()))
    got = grand_scores(net, x[:6], y[:6], norm, batch_size=4)
    torch.testing.assert_close(got, torch.stack(expected).detach(), atol=1e-5, rtol=1e-5)


def test_averaging_over_nets_and_train_mode_is_restored(small):
    x, y, norm = small
    nets = [_net(s) for s in range(3)]
    nets[1].train()
    for fn in (loss_scores, el2n_scores, margin_scores, grand_scores):
        single = torch.stack([fn(n, x, y, norm) for n in nets])
        torch.testing.assert_close(fn(nets, x, y, norm), single.mean(0), atol=1e-6, rtol=1e-6)
        torch.testing.assert_close(fn((nets[0],), x, y, norm), single[0])
    assert nets[1].training  # the scores switch to eval mode only while they run


def test_learnability_and_dispatcher(small):
    x, y, norm = small
    probe, ref = _net(0), _net(1)
    expected = loss_scores(probe, x, y, norm) - loss_scores(ref, x, y, norm)
    assert torch.equal(learnability_scores(probe, ref, x, y, norm), expected)
    assert torch.equal(score_samples("learnability", [probe, ref], x, y, norm, reference=ref), expected)
    assert torch.equal(score_samples("LOSS", probe, x, y, norm), loss_scores(probe, x, y, norm))
    for name, fn in (("el2n", el2n_scores), ("margin", margin_scores), ("grand", grand_scores)):
        assert torch.equal(score_samples(name, probe, x, y, norm), fn(probe, x, y, norm))
    assert set(SCORES) == {"loss", "el2n", "margin", "grand", "forgetting", "learnability"}


def test_scores_work_for_other_architectures_and_are_finite(small):
    x, y, norm = small
    net = _net(0, "mlp", width=16)
    big = x * 1e4  # extreme but finite inputs: no NaN
    for name in ("loss", "el2n", "margin", "grand"):
        s = score_samples(name, net, big, y, norm)
        assert s.shape == (40,) and not torch.isnan(s).any()


def test_trained_net_finds_its_mistakes_harder(digits):
    torch.manual_seed(0)
    net = get_network("mlp", 1, 10, 8, width=16)
    train_model(net, digits.x_train, digits.y_train, Recipe(epochs=3, batch_size=64, augment="none"),
                normalize=digits.normalize, progress=False)
    loss = loss_scores(net, digits.x_train, digits.y_train, digits.normalize)
    right = predict(net, digits.x_train, digits.normalize).argmax(1) == digits.y_train
    assert 0 < right.sum() < len(right)
    assert loss[right].mean() < loss[~right].mean()
    margin = margin_scores(net, digits.x_train, digits.y_train, digits.normalize)
    assert (margin[right] <= 0).all() and (margin[~right] >= 0).all()


# ------------------------------------------------------------------------------ errors

def test_errors_are_clear(small):
    x, y, norm = small
    net = _net(0)
    with pytest.raises(ValueError, match="40 samples but y has 39"):
        loss_scores(net, x, y[:39], norm)
    with pytest.raises(ValueError, match="40 samples but y has 39"):
        forgetting_scores(x, y[:39], epochs=1, width=8)
    with pytest.raises(ValueError, match="valid scores: loss, el2n, margin, grand, forgetting, learnability"):
        score_samples("entropy", net, x, y, norm)
    with pytest.raises(ValueError, match="reference"):
        score_samples("learnability", net, x, y, norm)
    with pytest.raises(ValueError, match="reference"):
        learnability_scores(net, None, x, y, norm)
    with pytest.raises(ValueError, match="forgetting_scores"):
        score_samples("forgetting", net, x, y, norm)
    with pytest.raises(ValueError, match="empty"):
        el2n_scores([], x, y, norm)
    with pytest.raises(ValueError, match=r"\[0, 9\]"):
        loss_scores(net, x, y + 10, norm)
    with pytest.raises(ValueError, match="integer class labels"):
        loss_scores(net, x, F.one_hot(y, 10).float(), norm)


def test_reference_network_is_trained_and_in_eval_mode(digits):
    from dasm.difficulty import reference_network

    ref = reference_network(digits, arch="mlp", epochs=2, seed=0, width=16)
    assert not ref.training
    untrained = _net(0, "mlp", width=16)
    x, y = digits.x_train, digits.y_train
    assert loss_scores(ref, x, y, digits.normalize).mean() < loss_scores(untrained, x, y, digits.normalize).mean()
