"""dasm.synthetic and dasm.published: decode/pack, init, save/load and its errors, imports."""

import pytest
import torch

from dasm.data import load_dataset
from dasm.published import import_published
from dasm.synthetic import (SyntheticSet, SyntheticSetError, check_matches, decode, initial_images, initial_indices,
                            mark_split, new_synthetic_set, pack)


def test_decode_shapes_labels_and_tile_order():
    x = torch.arange(2 * 16, dtype=torch.float32).view(2, 1, 4, 4)
    d = decode(x, 2)
    assert d.shape == (8, 1, 4, 4)
    # tile t of image i lands at i*4 + t, and a constant tile decodes to a constant image
    tiles = torch.ones(1, 1, 4, 4)
    tiles[..., :2, 2:] = 2
    tiles[..., 2:, :2] = 3
    tiles[..., 2:, 2:] = 4
    assert decode(tiles, 2).flatten(1).mean(1).tolist() == pytest.approx([1, 2, 3, 4])
    syn = SyntheticSet(torch.rand(6, 1, 8, 8), torch.tensor([0, 0, 1, 1, 2, 2]), 3, factor=2)
    xd, yd = syn.decoded()
    assert xd.shape == (24, 1, 8, 8) and yd.tolist() == [0] * 8 + [1] * 8 + [2] * 8
    assert decode(x, 1) is x


def test_pack_inverts_decode_on_smooth_images():
    smooth = torch.ones(8, 1, 8, 8) * torch.linspace(0, 1, 8).view(8, 1, 1, 1)
    packed = pack(smooth, 2)
    assert packed.shape == (2, 1, 8, 8)
    assert torch.allclose(decode(packed, 2), smooth, atol=1e-5)
    with pytest.raises(ValueError, match="multiple of factor"):
        pack(smooth[:3], 2)
    assert decode(pack(torch.rand(9, 1, 28, 28), 3), 3).shape == (9, 1, 28, 28)  # ragged 28 / 3


@pytest.mark.parametrize("init", ["noise", "real", "mix"])
def test_inits_have_right_shape_and_labels(digits, init):
    x, y = initial_images(digits, ipc=3, factor=2, init=init, seed=0)
    assert x.shape == (30, 1, 8, 8) and y.tolist() == [c for c in range(10) for _ in range(3)]
    x2, _ = initial_images(digits, ipc=3, factor=2, init=init, seed=0)
    assert torch.equal(x, x2)
    if init != "noise":
        assert x.min() >= 0 and x.max() <= 1


def test_real_init_uses_real_images_of_the_class(digits):
    x, y = initial_images(digits, ipc=2, factor=1, init="real", seed=1)
    flat = digits.x_train.flatten(1)
    for img, c in zip(x, y):
        hit = (flat == img.flatten()).all(1).nonzero()
        assert len(hit) and digits.y_train[hit[0, 0]] == c


def test_modes_init_starts_diverse(digits):
    feats = digits.x_train.flatten(1)
    x, y = initial_images(digits, ipc=5, init="modes", features=feats, seed=0)
    assert x.shape == (50, 1, 8, 8)
    for c in range(10):  # distinct starts within a class
        assert len({tuple(r) for r in x[y == c].flatten(1).tolist()}) == 5
    with pytest.raises(ValueError, match="needs features"):
        initial_images(digits, ipc=5, init="modes")
    with pytest.raises(ValueError, match="choose one of"):
        initial_images(digits, ipc=5, init="zeros")


def two_clusters(data, share: float = 0.5) -> torch.Tensor:
    """Features putting the first ``share`` of every class near (0, 0) and the rest near (10, 0)."""
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(len(data.y_train), 2, generator=g) * 0.1
    for ix in data.class_index:
        feats[ix[int(len(ix) * share):], 0] += 10.0
    return feats


def test_modes_with_covered_starts_go_where_the_class_is_not_covered(digits):
    feats = two_clusters(digits)
    covered = torch.stack([ix[0] for ix in digits.class_index])           # one start per class, all near (0, 0)
    for seed in range(3):
        picks = initial_indices(digits, ipc=1, init="modes", features=feats, seed=seed, covered=covered)
        assert (feats[picks, 0] > 5).all()                                  # the new start is in the other half
        assert not set(picks.tolist()) & set(covered.tolist())
    # without covered starts the result is the plain k-means one
    assert torch.equal(initial_indices(digits, ipc=2, init="modes", features=feats, seed=0),
                       initial_indices(digits, ipc=2, init="modes", features=feats, seed=0, covered=covered[:0]))


def test_ipc_larger_than_a_class_raises(digits):
    with pytest.raises(ValueError, match="largest IPC"):
        initial_images(digits, ipc=500)
    with pytest.raises(ValueError, match="needs 400 real images per class"):
        initial_images(digits, ipc=100, factor=2, init="mix")


def test_save_load_round_trip_and_png(digits, tmp_path):
    syn = new_synthetic_set(digits, 2, factor=2, init="mix", seed=0, method="idc")
    syn = syn.add_segment(torch.rand(20, 1, 8, 8), torch.arange(10).repeat_interleave(2))
    path = syn.save(tmp_path / "run" / "synthetic.pt")
    assert path.with_suffix(".png").stat().st_size > 100
    back = SyntheticSet.load(path)
    assert torch.equal(back.images, syn.images) and torch.equal(back.labels, syn.labels)
    assert back.factor == 2 and back.segments == [(0, 20), (20, 40)] and back.segment_ipcs() == [2, 2]
    assert back.meta["dataset"] == "digits" and back.meta["method"] == "idc" and "torch_version" in back.meta
    assert back.meta["threads"] == torch.get_num_threads()   # a seeded CPU run repeats only at one thread count
    check_matches(back, digits)


def test_corrupted_and_wrong_files_explain_themselves(digits, tmp_path):
    path = new_synthetic_set(digits, 1).save(tmp_path / "s.pt", png=False)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(SyntheticSetError, match="not a readable torch file"):
        SyntheticSet.load(path)
    torch.save({"weights": 1}, tmp_path / "model.pt")
    with pytest.raises(SyntheticSetError, match="not a dasm synthetic set"):
        SyntheticSet.load(tmp_path / "model.pt")
    with pytest.raises(SyntheticSetError, match="does not exist"):
        SyntheticSet.load(tmp_path / "nope.pt")
    state = torch.load(tmp_path / "s.pt.tmp", weights_only=False) if (tmp_path / "s.pt.tmp").exists() else None
    assert state is None  # saving is atomic: no temp file is left behind


def test_validation_messages():
    with pytest.raises(SyntheticSetError, match="one per image"):
        SyntheticSet(torch.rand(4, 1, 8, 8), torch.zeros(3, dtype=torch.long), 2)
    with pytest.raises(SyntheticSetError, match="same number of images"):
        SyntheticSet(torch.rand(3, 1, 8, 8), torch.tensor([0, 0, 1]), 2)
    with pytest.raises(SyntheticSetError, match="labels must lie"):
        SyntheticSet(torch.rand(2, 1, 8, 8), torch.tensor([0, 5]), 2)
    with pytest.raises(SyntheticSetError, match="NaN"):
        SyntheticSet(torch.full((2, 1, 8, 8), float("nan")), torch.tensor([0, 1]), 2)
    with pytest.raises(SyntheticSetError, match="tile"):
        SyntheticSet(torch.rand(2, 1, 8, 8), torch.tensor([0, 1]), 2, segments=[(0, 1)])


def test_check_matches_rejects_other_datasets(digits):
    syn = SyntheticSet(torch.rand(2, 1, 28, 28), torch.tensor([0, 1]), 2, meta={"dataset": "mnist"})
    with pytest.raises(SyntheticSetError, match="distilled from 'mnist'"):
        check_matches(syn, digits)


def test_import_published_formats(tmp_path):
    mean, std = 0.2861, 0.3530
    pix = torch.rand(20, 1, 28, 28)
    norm = (pix - mean) / std
    labels = torch.arange(10).repeat(2)  # interleaved: the importer groups them by class
    torch.save({"data": [[norm, labels]], "accs_all_exps": {}}, tmp_path / "res_DSA_FashionMNIST_ConvNet_2ipc.pt")
    s = import_published(tmp_path / "res_DSA_FashionMNIST_ConvNet_2ipc.pt", "fashion-mnist")
    assert s.ipc == 2 and s.labels.tolist() == sorted(labels.tolist())
    assert torch.allclose(s.images[0], pix[0], atol=1e-5)  # class 0's first image, un-normalised
    torch.save(norm, tmp_path / "images_best.pt")
    torch.save(labels, tmp_path / "labels_best.pt")
    assert import_published(tmp_path / "images_best.pt", "fashion-mnist").meta["method"] == "imported-mtt"
    torch.save([norm[:10], torch.arange(10)], tmp_path / "data.pt")
    s = import_published(tmp_path / "data.pt", "fashion-mnist", factor=2)
    assert s.factor == 2 and s.decoded()[0].shape == (40, 1, 28, 28)
    with pytest.raises(SyntheticSetError, match="experiment=3 is out of range"):
        import_published(tmp_path / "res_DSA_FashionMNIST_ConvNet_2ipc.pt", "fashion-mnist", experiment=3)
    (tmp_path / "labels_best.pt").unlink()
    with pytest.raises(SyntheticSetError, match="labels file"):
        import_published(tmp_path / "images_best.pt", "fashion-mnist")


def test_a_validation_split_must_be_held_out_from_the_set(digits):
    split = load_dataset("digits", val_fraction=0.2, seed=1)
    assert split.val_split == (0.2, 1)
    syn = new_synthetic_set(digits, 1)   # distilled from all of the training set
    with pytest.raises(SyntheticSetError, match="not held out"):
        check_matches(syn, split)
    mark_split(syn, split)
    assert syn.meta["val_split"] == [0.2, 1]
    check_matches(syn, split)     # the same split: fine
    check_matches(syn, digits)    # and a set made on a split can always be tested on the test split
    with pytest.raises(SyntheticSetError, match="split seed 1"):
        check_matches(syn, load_dataset("digits", val_fraction=0.2, seed=2))
