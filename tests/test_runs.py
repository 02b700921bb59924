"""Run folders: presets taking None as "the preset's value", re-evaluation returning old rows, full-data runs."""

import pandas as pd
import torch

import pytest

from dasm.config import dasm_preset_config, preset_config, resolve
from dasm.runs import cell_folder, distill_run, evaluate_run, full_data_run, grid, run_grid
from dasm.train import Recipe


def test_none_override_keeps_the_preset_value():
    assert preset_config("cpu", "digits", "idc", 10, iterations=None).iterations == \
        preset_config("cpu", "digits", "idc", 10).iterations
    assert dasm_preset_config("cpu", "digits", 10, segments=None, iterations=None).segments == 5


def test_probe_started_matching_sizes_the_probes_like_the_matching_network():
    cfg = dasm_preset_config("cpu", "digits", 10, match_net="probe")
    assert cfg.probe_width == cfg.base.width == 64 and dasm_preset_config("cpu", "digits", 10).probe_width == 32


def test_static_prune_reference_is_sized_like_dasms():
    dasm_cfg = resolve("cpu", "fashion-mnist", "dasm", 10).sequential
    prune = resolve("cpu", "fashion-mnist", "static-prune", 10, drop=0.2).prune
    assert prune.drop == 0.2
    assert (prune.reference_epochs, prune.reference_width) == (dasm_cfg.reference_epochs, dasm_cfg.probe_width)
    assert resolve("cpu", "fashion-mnist", "static-prune", 10, reference_epochs=2).prune.reference_epochs == 2
    one = resolve("cpu", "fashion-mnist", "static-prune", 1)   # fewer images than segments
    assert (one.ipc, one.prune.reference_width) == (1, dasm_cfg.probe_width)


def test_coreset_feature_network_is_sized_by_the_preset():
    prune = resolve("cpu", "fashion-mnist", "static-prune", 10).prune
    for method in ("herding", "kcenter"):
        cpu = resolve("cpu", "fashion-mnist", method, 10).features
        assert (cpu.feature_width, cpu.feature_epochs) == (prune.reference_width, prune.reference_epochs) == (32, 5)
        paper = resolve("paper", "fashion-mnist", method, 10).features
        assert (paper.feature_width, paper.feature_epochs) == (128, 20)
    assert resolve("cpu", "digits", "herding", 10, feature_epochs=2).features.feature_epochs == 2
    assert resolve("cpu", "digits", "random", 10).features is None


def test_resolve_names_a_bad_setting_and_the_method_it_does_not_apply_to():
    with pytest.raises(ValueError, match="Unknown method 'idk'"):
        resolve("cpu", "digits", "idk", 10)
    with pytest.raises(ValueError, match="takes no setting drop"):
        resolve("cpu", "digits", "dasm", 10, drop=0.2)
    with pytest.raises(ValueError, match="takes no setting iterations"):
        resolve("cpu", "digits", "random", 10, iterations=3)
    with pytest.raises(ValueError, match="Unknown setting"):
        resolve("cpu", "digits", "idc", 10, iteration=3)
    with pytest.raises(ValueError, match="positive integer"):
        resolve("cpu", "digits", "idc", 0)


def test_the_key_names_every_setting_but_the_seed():
    a, b = resolve("cpu", "digits", "idc", 10), resolve("cpu", "digits", "idc", 10, seed=1)
    assert a.key() == b.key() and a.name() != b.name()
    assert resolve("cpu", "digits", "idc", 10, lr_img=0.02).key() != a.key()
    assert resolve("cpu", "digits", "idc", 10, val_split=(0.1, 0)).key() != a.key()
    assert resolve("cpu", "digits", "idc", 10, iterations=None).key() == a.key()   # None: the preset's value
    assert a.name().startswith("digits-idc-ipc10-seed0-")


def test_herding_and_kcenter_train_their_feature_network_once(digits, tmp_path, monkeypatch):
    import dasm.coreset as coreset

    calls = []
    train = coreset.feature_network
    monkeypatch.setattr(coreset, "feature_network", lambda *a, **k: calls.append(k) or train(*a, **k))
    small = {"feature_width": 8, "feature_epochs": 1, "progress": False}
    herd = distill_run(digits, "herding", 2, tmp_path / "herding-ipc2", **small)
    distill_run(digits, "herding", 5, tmp_path / "herding-ipc5", **small)
    distill_run(digits, "kcenter", 2, tmp_path / "kcenter-ipc2", **small)
    assert len(calls) == 1 and calls[0]["width"] == 8 and calls[0]["epochs"] == 1
    cached = list((tmp_path / "features").glob("digits-convnet-w8-ep1-seed0-cpu.pt"))
    assert len(cached) == 1
    # the same set as selecting in a freshly trained network's embedding
    fresh = coreset.embed_dataset(train(digits, epochs=1, seed=0, width=8), digits.x_train, digits.normalize)
    assert torch.equal(herd.meta["indices"], coreset.herding_indices(digits, 2, fresh).cpu())
    distill_run(digits, "herding", 2, tmp_path / "other-seed", seed=1, **small)
    assert len(calls) == 2


def test_evaluate_run_returns_rows_trained_earlier(digits, tmp_path):
    distill_run(digits, "random", 2, tmp_path, progress=False)
    first = evaluate_run(tmp_path, digits, seeds=[0], epochs=2, progress=False)
    both = evaluate_run(tmp_path, digits, seeds=[0, 1], epochs=2, progress=False)
    acc = both[both.metric == "test_acc"]
    assert sorted(acc.seed) == [0, 1]
    assert acc[acc.seed == 0].value.iloc[0] == first[first.metric == "test_acc"].value.iloc[0]
    assert len(pd.read_csv(tmp_path / "results.csv").query("metric == 'test_acc'")) == 2  # seed 0 not retrained


def test_full_data_run_skips_done_seeds(digits, tmp_path):
    recipe = Recipe(epochs=1, augment="none")
    first = full_data_run(digits, tmp_path, seeds=[0], recipe=recipe, progress=False)
    again = full_data_run(digits, tmp_path, seeds=[0], recipe=recipe, progress=False)
    assert set(first.method) == {"full"} and first.equals(again)
    assert len(pd.read_csv(tmp_path / "results.csv")) == len(first)


def test_the_grid_gives_each_method_its_own_settings_and_caps_segments(digits, tmp_path):
    assert dict(grid(["dasm"], [1])[0].overrides) == {"segments": 1}   # the default 5 segments, capped too
    cells = grid(["random", "idc", "dasm"], [2], iterations=1, segments=5, probe_epochs=1)
    assert [dict(c.overrides) for c in cells] == [{}, {"iterations": 1}, {"iterations": 1, "segments": 2,
                                                                           "probe_epochs": 1}]
    results = run_grid(digits, cells, tmp_path, epochs=1, progress=False)
    acc = results[results.metric == "test_acc"]
    assert set(acc.method) == {"random", "idc", "dasm"}
    assert acc[acc.method == "dasm"].segments.iloc[0] == 2
    assert {p.name for p in tmp_path.iterdir() if p.is_dir()} >= {cell_folder(tmp_path, digits, c).name for c in cells}
    again = run_grid(digits, cells, tmp_path, epochs=1, progress=False)   # loaded and read back, not redone
    assert again[again.metric == "test_acc"].value.tolist() == acc.value.tolist()


def test_dasm_run_records_what_its_probes_cost(digits, tmp_path):
    distill_run(digits, "dasm", 2, tmp_path, progress=False, iterations=2, segments=2, probe_epochs=2)
    timing = pd.read_csv(tmp_path / "results.csv").set_index("metric").value
    assert 0 < timing["probe_seconds"] < timing["seconds"]


def test_modes_init_runs_in_the_preset_networks_embedding(digits, tmp_path):
    syn = distill_run(digits, "idc", 2, tmp_path / "idc-modes", init="modes", iterations=1, progress=False)
    assert syn.images.shape[0] == 20 and len(list((tmp_path / "features").glob("digits-*.pt"))) == 1
    dasm = distill_run(digits, "dasm", 2, tmp_path / "dasm-modes", init="modes", init_from="pool", segments=2,
                       iterations=2, probe_epochs=2, progress=False)
    assert dasm.segments == [(0, 10), (10, 20)]
    assert len(list((tmp_path / "features").glob("digits-*.pt"))) == 1   # the same embedding, cached


def test_dasm_on_a_modes_base_deals_the_bases_own_modes():
    # docs/presets.md: above IPC 10 the base starts from modes, and DASM
    # starts at those same modes, dealt to its segments by difficulty
    fifty, ten = dasm_preset_config("cpu", "fashion-mnist", 50), dasm_preset_config("cpu", "fashion-mnist", 10)
    assert (fifty.base.init, fifty.modes) == ("modes", "joint")
    assert (ten.base.init, ten.init_from, ten.modes) == ("mix", "all", "own")
    assert dasm_preset_config("cpu", "fashion-mnist", 50, modes="own").modes == "own"
    assert dasm_preset_config("cpu", "fashion-mnist", 50, init_from="all").init_from == "all"


def test_idc_starts_is_the_set_idc_starts_from_and_every_distiller_keeps_its_starts(digits, tmp_path):
    from dasm.synthetic import SyntheticSet

    small = {"iterations": 2, "progress": False}
    distill_run(digits, "idc", 5, tmp_path / "idc", **small)
    distill_run(digits, "idc-starts", 5, tmp_path / "idc-starts", progress=False)
    distill_run(digits, "dasm", 4, tmp_path / "dasm", segments=2, **small)
    starts = SyntheticSet.load(tmp_path / "idc" / "starts.pt")
    own = SyntheticSet.load(tmp_path / "idc-starts" / "synthetic.pt")
    assert torch.equal(starts.images, own.images) and own.meta["method"] == "idc-starts"
    assert not torch.equal(starts.images, SyntheticSet.load(tmp_path / "idc" / "synthetic.pt").images)
    # DASM's starts: each segment as it was before its matching, in the set's layout
    dasm_starts = SyntheticSet.load(tmp_path / "dasm" / "starts.pt")
    first = torch.load(tmp_path / "dasm" / "segment0" / "selection.pt", weights_only=False)["start_images"]
    assert dasm_starts.segments == SyntheticSet.load(tmp_path / "dasm" / "synthetic.pt").segments
    assert torch.equal(dasm_starts.images[:len(first)], first)
