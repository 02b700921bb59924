"""dasm.pruning: the static-pruning ablation drops the easiest fraction of each class, then distills once."""

import pytest

from dasm.distill import config_for
from dasm.pruning import static_prune

FAST = dict(width=16, iterations=4, match_steps=3, net_steps=1, batch_real=16, checkpoint_every=1)


def test_static_prune_drops_the_easiest(digits):
    base = config_for("dsa", ipc=1, **FAST)
    syn, _, pools = static_prune(digits, base, drop=0.25, reference_epochs=2, progress=False)
    assert sum(len(p) for p in pools) == pytest.approx(0.75 * len(digits.y_train), rel=0.02)
    assert syn.meta["method"] == "static-prune"


def test_static_prune_reports_progress_and_stops_when_asked(digits):
    base = config_for("dsa", ipc=1, **{**FAST, "iterations": 5})
    seen = []
    _, hist, _ = static_prune(digits, base, drop=0.25, reference_epochs=1, reference_width=16, progress=False,
                              callback=seen.append, should_stop=lambda: len(seen) >= 2)
    assert [log["iteration"] for log in seen] == [0, 1] and len(hist) == 2


def test_static_prune_keeps_enough_images_to_start_from(digits):
    base = config_for("dsa", ipc=2, **{**FAST, "iterations": 1})
    _, _, pools = static_prune(digits, base, drop=0.99, reference_epochs=1, reference_width=16, progress=False)
    assert min(len(p) for p in pools) >= 2


def test_static_prune_rejects_a_bad_fraction(digits):
    with pytest.raises(ValueError, match="drop must be a fraction"):
        static_prune(digits, config_for("dsa", ipc=1, **FAST), drop=1.0, progress=False)


def test_a_resumed_static_prune_reuses_its_scores(digits, tmp_path, monkeypatch):
    import dasm.pruning as pruning
    base = config_for("dsa", ipc=1, **{**FAST, "iterations": 1})
    _, _, first = static_prune(digits, base, drop=0.25, reference_epochs=1, reference_width=16, progress=False,
                               out=tmp_path)

    def no_training(*args, **kwargs):
        raise AssertionError("a resumed static-prune run trained its reference network again")
    monkeypatch.setattr(pruning, "reference_network", no_training)
    _, _, again = static_prune(digits, base, drop=0.25, reference_epochs=1, reference_width=16, progress=False,
                               out=tmp_path)
    assert all(a.equal(b) for a, b in zip(first, again))
    with pytest.raises(AssertionError, match="trained its reference network again"):  # other settings: new scores
        static_prune(digits, base, drop=0.25, reference_epochs=2, reference_width=16, progress=False, out=tmp_path)
