"""dasm.analysis.figures: choosing figures, and the cached full-data reference behind the difficulty scores."""

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

from dasm.analysis.figures import difficulty_reference, fast_runs, make_figures  # noqa: E402
from dasm.difficulty import loss_scores  # noqa: E402


def test_only_draws_the_chosen_figures(digits, tmp_path):
    runs = fast_runs(digits, tmp_path / "runs", ipc=2, iterations=2)
    files = make_figures(digits, runs, tmp_path / "figs", fast=True, only=["saturation", "redundancy"])
    assert {f.stem for f in files} == {"saturation", "gain_over_idc", "redundancy_idc-ipc2", "redundancy_dasm-ipc2"}
    assert not (tmp_path / "figs" / "cache").exists()   # no figure asked for the difficulty reference
    with pytest.raises(ValueError, match="Unknown figures"):
        make_figures(digits, runs, tmp_path / "figs", only=["umap"])


def test_difficulty_reference_is_cached_and_reloads_the_same_network(digits, tmp_path):
    net, loss, forget, never = difficulty_reference(digits, epochs=1, width=16, cache_dir=tmp_path)
    assert list(tmp_path.glob("difficulty-digits-w16-e1-s0.pt"))
    net2, loss2, forget2, never2 = difficulty_reference(digits, epochs=1, width=16, cache_dir=tmp_path)
    assert torch.equal(loss, loss2) and torch.equal(forget, forget2) and torch.equal(never, never2)
    assert torch.allclose(loss_scores(net2, digits.x_train, digits.y_train, digits.normalize), loss)
    assert len(loss) == len(forget) == len(digits.y_train)
