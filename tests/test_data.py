"""dasm.data: shapes, ranges, deterministic splits, validation carving, clear errors."""

import gzip

import numpy as np
import pytest
import torch

from dasm import data as data_mod
from dasm.data import DatasetNotFoundError, canonical_name, load_dataset, read_idx, stratified_split


def test_digits_shapes_and_ranges(digits):
    assert digits.x_train.shape == (1437, 1, 8, 8)
    assert digits.x_test.shape == (360, 1, 8, 8)
    assert digits.x_train.dtype == torch.float32 and digits.y_train.dtype == torch.int64
    assert digits.x_train.min() >= 0 and digits.x_train.max() <= 1
    assert digits.x_train.max() == 1  # 16/16: the full range is used
    assert digits.num_classes == 10 and digits.channels == 1 and digits.im_size == (8, 8)
    assert sorted(digits.y_train.unique().tolist()) == list(range(10))


def test_digits_split_is_stratified_and_deterministic(digits):
    test_counts = torch.bincount(digits.y_test, minlength=10)
    assert (test_counts - 36).abs().max() <= 1  # 20% of ~180 per class
    again = load_dataset("digits")
    assert torch.equal(again.x_train, digits.x_train) and torch.equal(again.y_test, digits.y_test)
    # no image is in both splits
    tr = {tuple(r) for r in digits.x_train.flatten(1).tolist()}
    overlap = sum(tuple(r) in tr for r in digits.x_test.flatten(1).tolist())
    assert overlap <= 2  # the bundled set has a couple of exact duplicate images, nothing more


def test_class_index_matches_labels(digits):
    assert sum(digits.class_counts()) == len(digits.y_train)
    for c, ix in enumerate(digits.class_index):
        assert (digits.y_train[ix] == c).all()
    g = torch.Generator().manual_seed(0)
    assert digits.sample_class(3, 5, generator=g).shape == (5, 1, 8, 8)


def test_normalize_uses_mean_std(digits):
    z = digits.normalize(digits.x_train)
    assert abs(z.mean().item()) < 1e-3 and abs(z.std().item() - 1) < 1e-2


def test_validation_split_is_disjoint_and_stratified():
    full = load_dataset("digits")
    d = load_dataset("digits", val_fraction=0.1, seed=1)
    assert len(d.y_train) + len(d.y_val) == len(full.y_train)
    assert torch.equal(d.x_test, full.x_test)  # the test split is never touched
    counts = torch.bincount(d.y_val, minlength=10)
    assert counts.min() >= 14 and counts.max() <= 15  # 10% of ~144 per class
    keep, held = stratified_split(full.y_train, 0.1, seed=1)
    assert set(keep.tolist()).isdisjoint(held.tolist())
    assert not torch.equal(stratified_split(full.y_train, 0.1, seed=2)[1], held)
    with pytest.raises(ValueError, match="val_fraction"):
        load_dataset("digits", val_fraction=1.5)


def test_fashion_mnist_from_real_files(fashion):
    assert fashion.x_train.shape == (60000, 1, 28, 28) and fashion.x_test.shape == (10000, 1, 28, 28)
    assert fashion.x_train.min() >= 0 and fashion.x_train.max() <= 1
    assert fashion.class_counts() == [6000] * 10
    assert fashion.classes[0] == "T-shirt/top" and fashion.classes[9] == "Ankle boot"
    assert abs(fashion.x_train.mean().item() - fashion.mean[0]) < 1e-3  # published stats match the data


def test_unknown_dataset_lists_the_known_ones():
    with pytest.raises(ValueError, match="Known datasets: digits, fashion-mnist"):
        load_dataset("imagenet-21k")
    assert canonical_name("Fashion_MNIST") == "fashion-mnist"


def test_missing_files_offline_names_every_way(tmp_path, monkeypatch):
    monkeypatch.setattr(data_mod, "DEBIAN_ROOT", tmp_path / "nowhere")
    with pytest.raises(DatasetNotFoundError) as err:
        load_dataset("fashion-mnist", root=tmp_path, download=False)
    msg = str(err.value)
    assert str(tmp_path / "fashion-mnist") in msg
    assert "apt-get install -y dataset-fashion-mnist" in msg
    assert "torchvision downloads" in msg


def test_failed_download_is_reported_with_the_ways(tmp_path, monkeypatch):
    import torchvision

    def offline(*args, **kwargs):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz: <urlopen error no network>")

    monkeypatch.setattr(data_mod, "DEBIAN_ROOT", tmp_path / "nowhere")
    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", offline)
    monkeypatch.setattr(torchvision.datasets, "CIFAR10", offline)
    for name in ("fashion-mnist", "cifar10"):
        with pytest.raises(DatasetNotFoundError, match="download failed: Error downloading"):
            load_dataset(name, root=tmp_path)


def _write_idx(path, array, magic=0x08, truncate=0):
    header = bytes([0, 0, magic, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    payload = array.astype(np.uint8).tobytes()
    with gzip.open(path, "wb") as f:
        f.write(header + payload[: len(payload) - truncate])


def test_idx_reader_and_data_dir_lookup(tmp_path):
    folder = tmp_path / "fashion-mnist"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for split, n in (("train", 20), ("t10k", 10)):
        _write_idx(folder / f"{split}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        _write_idx(folder / f"{split}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    d = load_dataset("fashion-mnist", root=tmp_path, download=False)
    assert d.x_train.shape == (20, 1, 28, 28) and d.source == str(folder)
    assert d.class_counts() == [2] * 10

    bad = tmp_path / "bad.gz"
    _write_idx(bad, np.zeros((3, 4)), magic=0x0D)
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(bad)
    _write_idx(bad, np.zeros((3, 4)), truncate=2)
    with pytest.raises(ValueError, match="truncated"):
        read_idx(bad)


def test_data_root_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv("DASM_DATA", str(tmp_path / "env"))
    assert data_mod.data_root() == tmp_path / "env"
    assert data_mod.data_root(tmp_path / "arg") == tmp_path / "arg"
    monkeypatch.delenv("DASM_DATA")
    assert data_mod.data_root() == data_mod.PROJECT_ROOT / "data"
