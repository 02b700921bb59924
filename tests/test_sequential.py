"""dasm.sequential: pool selection policies, frozen segments, K = 1 equals the base distiller, logs, resume."""

import json
from dataclasses import replace

import pytest
import torch

from dasm.distill import config_for, distill
from dasm.synthetic import SyntheticSet
from dasm.sequential import DasmConfig, dasm_distill, pool_bounds, select_pools, window_bounds

FAST = dict(width=16, iterations=4, match_steps=3, net_steps=1, batch_real=16, checkpoint_every=1)


def _toy_classes():
    # two classes of 10 samples; the score of sample i is its position in the class (0 = easiest)
    ix = [torch.arange(0, 10), torch.arange(10, 20)]
    scores = torch.cat([torch.arange(10.0), torch.arange(10.0).flip(0)])  # class 1 is stored hard -> easy
    return ix, scores


def test_window_slides_from_easy_to_hard():
    assert window_bounds(0, 5, 0.4) == (0.0, 0.4)
    assert window_bounds(4, 5, 0.4) == pytest.approx((0.6, 1.0))
    assert window_bounds(0, 1, 0.4) == (0.0, 1.0)
    ix, scores = _toy_classes()
    first = select_pools(scores, ix, 0, 3, "window", 0.4)
    last = select_pools(scores, ix, 2, 3, "window", 0.4)
    assert first[0].tolist() == [0, 1, 2, 3] and last[0].tolist() == [6, 7, 8, 9]
    assert first[1].tolist() == [16, 17, 18, 19] and last[1].tolist() == [10, 11, 12, 13]  # per-class ranks
    middle = select_pools(scores, ix, 1, 3, "window", 0.4)
    assert middle[0].tolist() == [3, 4, 5, 6]


def test_threshold_drops_the_easiest_more_as_k_grows():
    ix, scores = _toy_classes()
    sizes = [len(select_pools(scores, ix, k, 3, "threshold", 0.4)[0]) for k in range(3)]
    assert sizes == [10, 7, 4]
    assert select_pools(scores, ix, 2, 3, "threshold", 0.4)[0].tolist() == [6, 7, 8, 9]


def test_grow_keeps_everything_up_to_the_windows_upper_edge():
    ix, scores = _toy_classes()
    pools = [select_pools(scores, ix, k, 3, "grow", 0.4) for k in range(3)]
    assert [p[0].tolist() for p in pools] == [[0, 1, 2, 3], [0, 1, 2, 3, 4, 5, 6], list(range(10))]
    assert pools[1][1].tolist() == [13, 14, 15, 16, 17, 18, 19]             # class 1 is stored hard -> easy
    assert pool_bounds("grow", 1, 3, 0.4) == pytest.approx((0.0, 0.7))
    assert pool_bounds("window", 1, 3, 0.4) == pytest.approx((0.3, 0.7))
    assert pool_bounds("threshold", 1, 3, 0.4) == pytest.approx((0.3, 1.0))


def test_weighted_sampling_centres_on_the_window():
    ix = [torch.arange(0, 1000)]
    scores = torch.arange(1000.0)
    g = torch.Generator().manual_seed(0)
    early = select_pools(scores, ix, 0, 5, "weighted", 0.2, generator=g)[0].float().mean()
    late = select_pools(scores, ix, 4, 5, "weighted", 0.2, generator=g)[0].float().mean()
    assert early < 250 and late > 750


@pytest.mark.parametrize("policy", ["window", "grow", "threshold", "weighted", "none"])
def test_no_policy_ever_empties_a_class(policy):
    ix = [torch.arange(0, 1), torch.arange(1, 3), torch.arange(3, 103)]
    scores = torch.rand(103)
    for k in range(4):
        pools = select_pools(scores, ix, k, 4, policy, 0.05, generator=torch.Generator().manual_seed(k),
                             min_per_class=2)
        assert [len(p) >= min(2, len(c)) for p, c in zip(pools, ix)] == [True] * 3
        for p, c in zip(pools, ix):
            assert set(p.tolist()) <= set(c.tolist())
    with pytest.raises(ValueError, match="choose one of window"):
        select_pools(scores, ix, 0, 2, "random")


def test_single_segment_reproduces_the_plain_distiller(digits):
    base = config_for("dsa", ipc=2, **FAST)
    plain, plain_hist = distill(digits, base, progress=False)
    dasm, hist, segs = dasm_distill(digits, DasmConfig(base, segments=1), progress=False)
    assert torch.equal(plain.images, dasm.images)
    assert hist.loss.tolist() == pytest.approx(plain_hist.loss.tolist())
    assert len(segs) == 1 and segs.pool_size[0] == len(digits.y_train)


def test_segments_freeze_log_and_resume(digits, tmp_path):
    base = config_for("dsa", ipc=3, **FAST)
    cfg = DasmConfig(base, segments=3, probe_epochs=5, window=0.5, iterations_per_segment=2, joint=0.0)
    snapshots = []
    syn, hist, segs = dasm_distill(digits, cfg, out=tmp_path, progress=False,
                                   on_segment=lambda log, s: snapshots.append(s.images.detach().clone()))
    assert syn.segments == [(0, 10), (10, 20), (20, 30)] and syn.segment_ipcs() == [1, 1, 1]
    # earlier segments never change once distilled
    assert torch.equal(snapshots[0][:10], syn.images[:10]) and torch.equal(snapshots[1][:20], syn.images[:20])
    assert list(segs.segment) == [0, 1, 2] and segs.probe_real_acc.iloc[1:].notna().all()
    assert (segs.pool_min_class >= 1).all() and segs.pool_size.iloc[1] < len(digits.y_train)
    assert segs.quantile_lo.tolist() == pytest.approx([0.0, 0.25, 0.5])
    assert set(hist.segment) == {0, 1, 2} and len(hist) == 6
    assert json.loads(segs.class_counts.iloc[1]) and (tmp_path / "segments.csv").exists()
    assert syn.meta["method"] == "dasm" and len(syn.meta["segment_logs"]) == 3
    assert torch.load(tmp_path / "segment1" / "selection.pt", weights_only=False)["scores"].shape == (1437,)
    again, _, segs2 = dasm_distill(digits, cfg, out=tmp_path, progress=False)  # every segment done: loads
    assert torch.equal(again.images, syn.images) and len(segs2) == 3
    with pytest.raises(ValueError, match="other settings"):            # never mixes runs
        dasm_distill(digits, replace(cfg, window=0.3), out=tmp_path, progress=False)


def test_a_segment_resumed_half_way_logs_the_time_of_both_calls(digits, tmp_path):
    cfg = DasmConfig(config_for("dsa", ipc=2, **FAST), segments=2, probe_epochs=2, iterations_per_segment=4,
                     joint=0.0)
    calls = []
    dasm_distill(digits, cfg, out=tmp_path, progress=False, callback=calls.append,
                 should_stop=lambda: len(calls) >= 7)   # segment 2 stops after 3 of its 4 iterations
    _, hist, segs = dasm_distill(digits, cfg, out=tmp_path, progress=False)
    second = hist[hist.segment == 1]
    assert second.resumed.tolist() == [True] * 3 + [False]
    assert segs.distill_seconds.iloc[1] >= second.seconds.sum()


def test_scale_lr_gives_each_segment_the_plain_distillers_rate(digits):
    base = config_for("dsa", ipc=6, lr_img=0.1, **{k: v for k, v in FAST.items() if k != "iterations"},
                      iterations=2)
    assert [DasmConfig(base, segments=3).segment_lr(k) for k in range(3)] == [0.1] * 3
    uneven = DasmConfig(base, segments=3, sizes=(3, 2, 1), scale_lr=True)
    assert [uneven.segment_lr(k) for k in range(3)] == pytest.approx([0.05, 0.1 * 5 / 6, 0.1])
    assert DasmConfig(replace(base, method="idc"), segments=2).segment_lr(0) == pytest.approx(0.05)  # IDC: on
    cfg = DasmConfig(base, segments=2, probe_epochs=2, scale_lr=True, iterations_per_segment=1, joint=0.0)
    _, _, segs = dasm_distill(digits, cfg, progress=False)
    assert segs.lr_img.tolist() == pytest.approx([0.05, 0.1])  # the lr of a plain distiller of 3, then 6 images


def test_pools_come_from_the_difficulty_window(digits):
    base = config_for("dsa", ipc=2, **FAST)
    cfg = DasmConfig(base, segments=2, probe_epochs=5, window=0.3, iterations_per_segment=1)
    _, _, segs = dasm_distill(digits, cfg, progress=False)
    # the last segment draws from the hardest 30% of each class under the probe
    assert segs.score_mean.iloc[1] > segs.score_mean_all.iloc[1]
    assert segs.pool_size.iloc[1] == pytest.approx(0.3 * len(digits.y_train), rel=0.05)



def test_forgetting_pools_hold_the_real_images_the_probe_forgets(digits):
    """score="forgetting": a probe trained on the first segment is watched forgetting the real data; the last
    window draws the most-forgotten images."""
    cfg = DasmConfig(config_for("dsa", ipc=2, **FAST), segments=2, probe_epochs=10, window=0.3, score="forgetting",
                     iterations_per_segment=1, joint=0.0)
    _, _, segs = dasm_distill(digits, cfg, progress=False)
    assert segs.score_mean.iloc[1] > segs.score_mean_all.iloc[1] > 0

def test_init_from_all_starts_segments_outside_their_pool(digits, tmp_path):
    # a learning rate too small to move the pixels: every image stays the real image it started from
    base = config_for("dsa", ipc=10, init="real", **{**FAST, "iterations": 1, "match_steps": 1, "lr_img": 1e-9})
    real = digits.x_train.flatten(1)

    def start_in_pool(init_from: str) -> torch.Tensor:
        cfg = DasmConfig(base, segments=2, probe_epochs=2, window=0.2, init_from=init_from,
                         iterations_per_segment=1)
        syn, _, _ = dasm_distill(digits, cfg, out=tmp_path / init_from, progress=False)
        a, b = syn.segments[1]
        started = torch.cdist(syn.images[a:b].flatten(1), real).argmin(1)  # the real image each began as
        pool = torch.cat(torch.load(tmp_path / init_from / "segment1" / "selection.pt", weights_only=False)["pools"])
        return torch.isin(started, pool)

    assert start_in_pool("pool").all()
    assert not start_in_pool("all").all()  # the pool is a fifth of each class: most starts lie outside it
    with pytest.raises(ValueError, match="init_from"):
        DasmConfig(base, init_from="window")


def test_segments_of_a_multi_formation_base(digits, tmp_path):
    # the cpu preset's IDC base up to IPC 10 on 28x28 data is multi-formation (factor 2, mix init)
    base = config_for("idc", ipc=2, factor=2, init="mix", **FAST)
    cfg = DasmConfig(base, segments=2, probe_epochs=2, iterations_per_segment=1, joint=0.0)
    snapshots = []
    syn, _, segs = dasm_distill(digits, cfg, out=tmp_path, progress=False,
                                on_segment=lambda log, s: snapshots.append(s.images.detach().clone()))
    assert syn.factor == 2 and syn.segments == [(0, 10), (10, 20)] and syn.segment_ipcs() == [1, 1]
    x, y = syn.decoded()
    assert x.shape[0] == 4 * len(syn.labels) and torch.bincount(y).tolist() == [8] * 10   # f^2 images each
    assert torch.equal(snapshots[0][:10], syn.images[:10])                             # segment 0 frozen
    assert segs.probe_real_acc.iloc[1] > 10   # the probe learnt something from the decoded first segment


def test_joint_pass_shares_the_budget_and_moves_every_segment(digits, tmp_path):
    base = config_for("dsa", ipc=2, **{**FAST, "iterations": 10})
    cfg = DasmConfig(base, segments=2, probe_epochs=2, joint=0.4)
    assert (cfg.joint_iterations(), cfg.segment_iterations()) == (4, 3)   # 2 x 3 + 4 = the base's 10
    assert DasmConfig(base, segments=2, joint=0.0).segment_iterations() == 5
    assert DasmConfig(base, segments=1).joint_iterations() == 0                # K = 1 stays the base distiller
    small = DasmConfig(replace(base, iterations=2), segments=2, joint=0.4)   # 40% of 2 would leave 1 for 2 segments
    assert (small.joint_iterations(), small.segment_iterations()) == (0, 1)   # the joint pass gives way
    tiny = DasmConfig(replace(base, iterations=1), segments=2)
    assert (tiny.joint_iterations(), tiny.segment_iterations()) == (0, 1)    # below 1 per segment: 1 each
    seen = []
    syn, hist, segs = dasm_distill(digits, cfg, out=tmp_path, progress=False, callback=seen.append)
    before = SyntheticSet.load(tmp_path / "segment1" / "synthetic.pt")   # the set the joint pass started from
    assert syn.segments == before.segments == [(0, 10), (10, 20)]
    for k in range(2):                                                  # both segments moved in the joint pass
        assert not torch.equal(syn.images[syn.segment(k)], before.images[before.segment(k)])
    assert segs.stage.tolist() == ["segment", "segment", "joint"] and segs.segment.tolist() == [0, 1, 2]
    assert segs.pool_size.iloc[2] == len(digits.y_train) and segs.lr_img.iloc[2] == base.lr_img
    assert (hist.segment == 2).sum() == 4 and len(hist) == 10
    assert [log["stage"] for log in seen if log["segment"] == 2] == ["joint"] * 4
    again, _, segs2 = dasm_distill(digits, cfg, out=tmp_path, progress=False)   # finished: loads, same set
    assert torch.equal(again.images, syn.images) and len(segs2) == 3
    with pytest.raises(ValueError, match="joint"):
        DasmConfig(base, joint=1.0)


def test_probe_started_matching_networks(digits, monkeypatch):
    import dasm.sequential as seq

    starts = []
    real_distill = seq.distill_segment

    def spy(*args, **kwargs):
        starts.append(kwargs.get("net_starts"))
        return real_distill(*args, **kwargs)

    monkeypatch.setattr(seq, "distill_segment", spy)
    base = config_for("idc", ipc=2, factor=1, init="real", **FAST)
    cfg = DasmConfig(base, segments=2, probe_epochs=3, probe_width=FAST["width"], iterations_per_segment=1,
                     joint=0.0, match_net="probe")
    syn, _, _ = dasm_distill(digits, cfg, progress=False)
    assert starts[0] is None                                   # no probe before the first segment: fresh nets
    first = SyntheticSet(syn.images[:10], syn.labels[:10], 10, 1, [(0, 10)])
    probe = seq.train_probe(digits, first, seq.Recipe(epochs=3), seed=base.seed + 1, width=FAST["width"])
    assert len(starts[1]) == 1 and all(torch.equal(v, probe.state_dict()[k]) for k, v in starts[1][0].items())
    # the ablation without difficulty keeps fresh networks unless asked, so it still needs no probe
    starts.clear()
    dasm_distill(digits, replace(cfg, policy="none", match_net="fresh"), progress=False)
    assert starts == [None, None]
    with pytest.raises(ValueError, match="probe_width"):
        DasmConfig(base, match_net="probe", probe_width=8)
    with pytest.raises(ValueError, match="match_net"):
        DasmConfig(base, match_net="trained")


def test_modes_init_starts_every_segment_from_new_real_images(digits, tmp_path):
    from dasm.coreset import embed_dataset, feature_network

    base = config_for("dsa", ipc=4, init="modes", **{**FAST, "lr_img": 1e-9})
    feats = embed_dataset(feature_network(digits, epochs=1, width=8), digits.x_train, digits.normalize)
    cfg = DasmConfig(base, segments=2, probe_epochs=2, window=0.5, init_from="pool", iterations_per_segment=1,
                     joint=0.0)
    syn, _, _ = dasm_distill(digits, cfg, out=tmp_path, progress=False, features=feats)
    sel = [torch.load(tmp_path / f"segment{k}" / "selection.pt", weights_only=False) for k in range(2)]
    first, second = sel[0]["starts"], sel[1]["starts"]
    assert len(first) == len(second) == 20 and not set(first.tolist()) & set(second.tolist())
    assert set(second.tolist()) <= set(torch.cat(sel[1]["pools"]).tolist())      # modes of its own pool
    a, b = syn.segments[1]                                                      # lr ~0: images are their starts
    assert torch.allclose(syn.images[a:b], digits.x_train[second], atol=1e-4)
    # resumed after the first segment, the second still avoids the first one's starts
    import shutil
    shutil.rmtree(tmp_path / "segment1")
    for name in ("synthetic.pt", "config.json"):
        (tmp_path / name).unlink(missing_ok=True)
    again, _, _ = dasm_distill(digits, cfg, out=tmp_path, progress=False, features=feats)
    assert torch.equal(again.images, syn.images)


def test_complement_modes_start_a_segment_where_earlier_ones_leave_the_class_uncovered(digits, tmp_path):
    from test_synthetic import two_clusters

    feats = two_clusters(digits, share=0.6)   # each class: 60% near (0, 0), 40% near (10, 0)
    base = config_for("dsa", ipc=2, init="modes", **{**FAST, "lr_img": 1e-9})

    def halves(modes: str) -> torch.Tensor:   # per class: which half each segment started in
        cfg = DasmConfig(base, segments=2, policy="none", iterations_per_segment=1, joint=0.0, modes=modes)
        dasm_distill(digits, cfg, out=tmp_path / modes, progress=False, features=feats)
        starts = [torch.load(tmp_path / modes / f"segment{k}" / "selection.pt", weights_only=False)["starts"]
                  for k in range(2)]
        return torch.stack([feats[s, 0] > 5 for s in starts])                 # (segment, class): in the small cluster?

    # one k-means centre per segment: the class mean (x = 4) is nearest the big cluster's edge
    own, covered = halves("own"), halves("complement")
    assert not own.any()                                                      # own: both segments start there
    assert torch.equal(own[0], covered[0]) and covered[1].all()               # complement: the second covers the rest
    with pytest.raises(ValueError, match="modes"):
        DasmConfig(base, modes="cover")


def test_starts_by_difficulty_takes_the_candidates_ranked_nearest_the_window_centre():
    from dasm.pools import starts_by_difficulty

    ix, scores = _toy_classes()                      # class 0: sample i has rank i; class 1: sample 10 + i rank 9 - i
    cands = [torch.tensor([0, 4, 5, 9]), torch.tensor([10, 14, 15, 19])]
    picks, q = starts_by_difficulty(cands, scores, ix, centre=1.0, need=2)
    assert picks[0].tolist() == [9, 5] and picks[1].tolist() == [10, 14]     # the hardest two of each class
    assert q == pytest.approx((1.0 + 5 / 9 + 1.0 + 5 / 9) / 4)
    picks, _ = starts_by_difficulty(cands, scores, ix, centre=0.0, need=1)
    assert [p.tolist() for p in picks] == [[0], [19]]
    g = torch.Generator().manual_seed(0)
    picks, q = starts_by_difficulty(cands, None, ix, centre=0.5, need=3, generator=g)   # no scores: random
    assert q is None and all(len(p) == 3 and set(p.tolist()) <= set(c.tolist()) for p, c in zip(picks, cands))
    with pytest.raises(ValueError, match="needed"):
        starts_by_difficulty(cands, scores, ix, centre=0.5, need=5)


def test_joint_modes_deal_the_base_distillers_own_starts_to_the_segments(digits, tmp_path):
    from dasm.coreset import embed_dataset, feature_network
    from dasm.synthetic import initial_indices

    base = config_for("dsa", ipc=6, init="modes", **{**FAST, "lr_img": 1e-9})
    feats = embed_dataset(feature_network(digits, epochs=1, width=8), digits.x_train, digits.normalize)
    cfg = DasmConfig(base, segments=3, probe_epochs=2, probe_width=8, window=0.5, iterations_per_segment=1,
                     joint=0.0, modes="joint")
    syn, _, segs = dasm_distill(digits, cfg, out=tmp_path, progress=False, features=feats)
    planned = initial_indices(digits, 6, 1, "modes", base.seed, feats)          # where plain DSA would start
    starts = [torch.load(tmp_path / f"segment{k}" / "selection.pt", weights_only=False)["starts"] for k in range(3)]
    assert all(len(s) == 20 for s in starts) and len(set(torch.cat(starts).tolist())) == 60
    assert set(torch.cat(starts).tolist()) == set(planned.tolist())
    # the middle segment takes, of each class's 4 unused starts, the 2 ranked nearest its window's centre
    scores = torch.load(tmp_path / "segment1" / "selection.pt", weights_only=False)["scores"].to(digits.device)
    centre = sum(pool_bounds("window", 1, 3, 0.5)) / 2
    chosen = []
    for c, ix in enumerate(digits.class_index):
        ranked = torch.sort(scores[ix]).values
        left = [i for i in planned.tolist() if digits.y_train[i] == c and i not in set(starts[0].tolist())]
        q = {i: float(torch.searchsorted(ranked, scores[i:i + 1]).item()) / (len(ix) - 1) for i in left}
        mine = [i for i in starts[1].tolist() if digits.y_train[i] == c]
        others = [abs(q[i] - centre) for i in left if i not in mine]
        assert max(abs(q[i] - centre) for i in mine) <= min(others)
        chosen += [q[i] for i in mine]
    assert segs.start_quantile.iloc[1] == pytest.approx(sum(chosen) / len(chosen), abs=1e-5)
    assert segs.start_quantile.isna().iloc[0]                                 # no probe before the first segment
    a, b = syn.segments[1]                                                      # lr ~0: images are their starts
    assert torch.allclose(syn.images[a:b], digits.x_train[starts[1]], atol=1e-4)


def test_nodifficulty_ablation_uses_all_data(digits):
    base = config_for("dsa", ipc=2, **FAST)
    syn, _, segs = dasm_distill(digits, DasmConfig(base, segments=2, policy="none", iterations_per_segment=1),
                                progress=False)
    assert (segs.pool_size == len(digits.y_train)).all() and syn.meta["method"] == "dasm-nodifficulty"


def test_config_errors():
    base = config_for("dsa", ipc=10)
    with pytest.raises(ValueError, match="adding up to IPC 10"):
        DasmConfig(base, segments=3, sizes=(3, 3, 3))
    with pytest.raises(ValueError, match="segment sizes"):
        DasmConfig(base, segments=20)
    with pytest.raises(ValueError, match="Unknown score"):
        DasmConfig(base, score="entropy")
    assert DasmConfig(base, segments=3).segment_sizes() == (4, 3, 3)
