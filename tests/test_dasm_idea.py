"""DASM's idea, end to end on digits: each segment is matched only against its difficulty pool, the pools
follow the probe's scores, the probe sees only the earlier segments, and the ablations (no difficulty,
static pruning) do what they claim. Each test spies on the real code paths of a tiny run."""

from dataclasses import replace

import pytest
import torch

import dasm.distill as distill_mod
import dasm.pruning as pruning_mod
import dasm.sequential as seq
from dasm.config import dasm_preset_config
from dasm.distill import config_for, distill_segment
from dasm.pruning import static_prune
from dasm.sequential import dasm_distill, segment_starts
from dasm.synthetic import SyntheticSet, new_synthetic_set

TINY = dict(iterations=3, match_steps=2, width=16, probe_epochs=2, probe_width=16, joint=0.0, checkpoint_every=10)


def _config(ipc: int = 3, segments: int = 3, **overrides: object) -> seq.DasmConfig:
    """A tiny DASM over the cpu preset's IDC base (its network updates draw real data)."""
    return dasm_preset_config("cpu", "digits", ipc, segments=segments, **{**TINY, **overrides})


def _selection(out, k: int) -> dict:
    return torch.load(out / f"segment{k}" / "selection.pt", weights_only=False)


def _spy_draws(monkeypatch) -> list[tuple[int, torch.Tensor]]:
    """Every real index drawn (class batches and network updates), tagged with the segment being distilled."""
    draws, current = [], {"segment": None}
    real_draw, real_segment = distill_mod._draw_real, seq.distill_segment

    def draw(pool, n, g):
        picked = real_draw(pool, n, g)
        draws.append((current["segment"], picked.cpu()))
        return picked

    def segment(*args, **kwargs):
        current["segment"] = kwargs.get("train_segment", -1)
        return real_segment(*args, **kwargs)

    monkeypatch.setattr(distill_mod, "_draw_real", draw)
    monkeypatch.setattr(seq, "distill_segment", segment)
    return draws


def _spy_probes(monkeypatch) -> list[tuple[SyntheticSet, torch.nn.Module]]:
    """The set each probe is trained on (copied at the call) and the probe it returns."""
    calls, real_train = [], seq.train_probe

    def train(data, syn, *args, **kwargs):
        seen = SyntheticSet(syn.images.detach().clone(), syn.labels.clone(), syn.num_classes, syn.factor,
                            list(syn.segments))
        probe = real_train(data, syn, *args, **kwargs)
        calls.append((seen, probe))
        return probe

    monkeypatch.setattr(seq, "train_probe", train)
    return calls


# -- where the segments start (init="modes"), pinned to values recorded before the stages were split ----

RECORDED_STARTS = {
    "own": [[1004, 712, 1298, 1285, 1024, 1198, 1098, 200, 1084, 1163, 257, 520, 228, 319, 1307, 618, 880, 1227,
             191, 14],
            [342, 1035, 913, 1342, 265, 954, 1317, 1232, 451, 404, 291, 1112, 979, 985, 768, 1006, 313, 403, 219,
             1427]],
    "complement": [[1004, 712, 1298, 1285, 1024, 1198, 1098, 200, 1084, 1163, 257, 520, 228, 319, 1307, 618, 880,
                    1227, 191, 14],
                   [1212, 418, 346, 1389, 954, 1433, 895, 1317, 1037, 269, 1112, 291, 985, 694, 28, 1006, 868, 475,
                    224, 1427]],
    "joint": [[636, 297, 1389, 901, 1198, 954, 1232, 255, 506, 529, 802, 189, 1081, 694, 1006, 192, 1373, 1227, 224,
               715],
              [1035, 418, 497, 829, 392, 148, 237, 1344, 406, 1084, 1350, 866, 319, 985, 684, 329, 880, 475, 1427,
               523]],
}


def _modes_config(modes: str) -> seq.DasmConfig:
    return dasm_preset_config("cpu", "digits", 4, init="modes", modes=modes, segments=2, iterations=2,
                              match_steps=2, width=16, probe_epochs=2, probe_width=16, joint=0.0)


@pytest.mark.parametrize("modes", ["own", "complement", "joint"])
def test_modes_starts_are_the_recorded_ones_and_segment_starts_reproduces_them(digits, tmp_path, modes):
    feats = digits.x_train.flatten(1)   # pixels: an embedding that needs no training
    cfg = _modes_config(modes)
    dasm_distill(digits, cfg, out=tmp_path, progress=False, features=feats)
    sel = [_selection(tmp_path, k) for k in range(2)]
    assert [s["starts"].tolist() for s in sel] == RECORDED_STARTS[modes]
    used = torch.zeros(len(digits.y_train), dtype=torch.bool)
    for k, s in enumerate(sel):   # the public function picks what the run picked (joint: dealt by the probe's scores)
        if modes != "joint" or s["scores"] is not None:
            begun, _ = segment_starts(digits, cfg, k, used, features=feats, pools=s["pools"], scores=s["scores"])
            assert begun.tolist() == RECORDED_STARTS[modes][k]
        used[s["starts"]] = True


# -- each segment is matched against its own pool only ------------------------------------------------

def test_every_real_sample_a_segment_uses_lies_in_its_pool(digits, tmp_path, monkeypatch):
    draws = _spy_draws(monkeypatch)
    cfg = _config()
    dasm_distill(digits, cfg, out=tmp_path, progress=False)
    net_draw = cfg.base.batch_net * cfg.base.net_steps
    for k in range(cfg.segments):
        pools = _selection(tmp_path, k)["pools"]
        mine = [d for seg, d in draws if seg == k]
        batches = [d for d in mine if len(d) != net_draw]     # per-class real batches of the matching steps
        updates = [d for d in mine if len(d) == net_draw]     # IDC's network updates on real data
        assert batches and updates
        for d in batches:
            c = int(digits.y_train[d[0]])
            assert set(d.tolist()) <= set(pools[c].tolist()), f"segment {k} matched class {c} outside its pool"
        allowed = set(torch.cat(pools).tolist())
        for d in updates:
            assert set(d.tolist()) <= allowed, f"segment {k} updated its network on data outside its pool"
        if k > 0:   # a probe chose the pool: half of each class, so the check has teeth
            assert len(allowed) < 0.6 * len(digits.y_train)


def test_distill_segment_never_reads_a_real_image_outside_its_pools(digits):
    # every real image outside the pools is NaN: one read anywhere (batches or network updates) poisons the run
    pools = [ix[: len(ix) // 3] for ix in digits.class_index]
    keep = torch.zeros(len(digits.y_train), dtype=torch.bool)
    keep[torch.cat(pools)] = True
    poisoned = replace(digits, x_train=torch.where(keep.view(-1, 1, 1, 1), digits.x_train, torch.nan))
    cfg = config_for("idc", ipc=2, factor=1, init="real", width=16, iterations=2, match_steps=3, net_steps=2,
                     batch_real=16, batch_net=32)
    syn = new_synthetic_set(replace(poisoned, class_index=pools), 2, 1, "real", 0)   # starts from the pools
    out, _ = distill_segment(poisoned, syn, cfg, pools=pools, progress=False)
    assert torch.isfinite(out.images).all()


# -- the pools follow the probe's difficulty ---------------------------------------------------------

def test_pools_follow_the_probes_difficulty(digits, tmp_path, monkeypatch):
    # the probe finds a known fifth of each class hard (it predicts a wrong class there, the right one elsewhere)
    g = torch.Generator().manual_seed(0)
    hard = torch.zeros(len(digits.y_train), dtype=torch.bool)
    for ix in digits.class_index:
        hard[ix[torch.randperm(len(ix), generator=g)[: round(0.2 * len(ix))]]] = True
    probes = _spy_probes(monkeypatch)
    real_predict = seq.predict

    def predict(net, x, *args, **kwargs):
        if x is not digits.x_train:
            return real_predict(net, x, *args, **kwargs)
        assert probes and net is probes[-1][1], "the real data must be scored by the probe just trained"
        target = torch.where(hard, (digits.y_train + 1) % 10, digits.y_train)
        return 5.0 * torch.nn.functional.one_hot(target, 10).float()

    monkeypatch.setattr(seq, "predict", predict)
    cfg = _config(window=0.5)   # windows: [0, 1] (no probe yet), [0.25, 0.75], [0.5, 1]
    dasm_distill(digits, cfg, out=tmp_path, progress=False)
    hard_ix = set(hard.nonzero().flatten().tolist())
    pools = [set(torch.cat(_selection(tmp_path, k)["pools"]).tolist()) for k in range(3)]
    assert len(pools[0]) == len(digits.y_train)          # nothing distilled yet: no probe, every sample
    assert not hard_ix & pools[1]                        # the middle window stops short of the hardest fifth
    assert hard_ix <= pools[2]                           # the last window holds all of it
    assert len(pools[2]) == pytest.approx(0.5 * len(digits.y_train), rel=0.02)


# -- the probe M_{k-1} is trained on S_1 .. S_{k-1} only ----------------------------------------------

def test_the_probe_of_segment_k_is_trained_on_the_earlier_segments_only(digits, tmp_path, monkeypatch):
    probes = _spy_probes(monkeypatch)
    cfg = _config()
    dasm_distill(digits, cfg, out=tmp_path, progress=False)
    assert len(probes) == cfg.segments - 1               # none before the first segment
    for k, (seen, _) in enumerate(probes, start=1):
        earlier = SyntheticSet.load(tmp_path / f"segment{k - 1}" / "synthetic.pt")   # S_1 .. S_{k-1} as finished
        assert seen.segments == earlier.segments and len(seen.labels) == k * 10   # one image a class a segment
        assert torch.equal(seen.images, earlier.images) and torch.equal(seen.labels, earlier.labels)


# -- the ablations ----------------------------------------------------------------------------------

def test_without_difficulty_every_pool_is_all_data_and_no_probe_is_trained(digits, tmp_path, monkeypatch):
    probes, draws = _spy_probes(monkeypatch), _spy_draws(monkeypatch)
    cfg = _config(policy="none", match_net="fresh", iterations=6)
    syn, _, segs = dasm_distill(digits, cfg, out=tmp_path, progress=False)
    assert probes == [] and syn.meta["method"] == "dasm-nodifficulty"
    for k in range(cfg.segments):
        sel = _selection(tmp_path, k)
        assert sel["scores"] is None
        assert all(torch.equal(p, ix.cpu()) for p, ix in zip(sel["pools"], digits.class_index))
    assert (segs.pool_size == len(digits.y_train)).all()
    last = set(torch.cat([d for seg, d in draws if seg == cfg.segments - 1]).tolist())
    assert len(last) > 0.75 * len(digits.y_train)        # the last segment really draws from everywhere


def test_static_pruning_drops_the_easiest_and_matches_only_what_it_keeps(digits, monkeypatch):
    scores = torch.rand(len(digits.y_train), generator=torch.Generator().manual_seed(1))   # the reference's order
    reference = torch.nn.Identity()
    monkeypatch.setattr(pruning_mod, "reference_network", lambda *args, **kwargs: reference)

    def score_samples(score, net, *args, **kwargs):
        assert net is reference, "static pruning scores with the full-data reference network"
        return scores

    monkeypatch.setattr(pruning_mod, "score_samples", score_samples)
    draws = _spy_draws(monkeypatch)
    base = config_for("idc", ipc=2, factor=1, init="real", width=16, iterations=2, match_steps=2, batch_real=16)
    _, _, pools = static_prune(digits, base, drop=0.3, reference_epochs=1, progress=False)
    kept = set(torch.cat(pools).tolist())
    for ix, pool in zip(digits.class_index, pools):
        order = ix[torch.argsort(scores[ix])]
        cut = round(0.3 * len(ix))
        assert set(pool.tolist()) == set(order[cut:].tolist())   # the easiest 30% of each class are gone
    drawn = set(torch.cat([d for _, d in draws]).tolist())
    assert drawn and drawn <= kept                             # never a dropped sample, batch or update
