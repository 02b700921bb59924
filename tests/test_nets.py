"""Tests for dasm.nets: shapes, the embed/classifier contract, input gradients, errors, trainability."""

import pytest
import torch
import torch.nn as nn

from dasm.nets import NORMS, ConvNet, get_network, list_networks

NAMES = ["convnet", "convnet-bn", "convnet-ln", "convnet-nn", "mlp", "lenet", "alexnet",
         "vgg11", "vgg11-bn", "resnet18", "resnet18-bn"]
SIZES = [(1, 8, 10), (1, 28, 10), (3, 32, 10)]  # (channels, im_size, num_classes)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors run fastest single-threaded, and 2 busy cores make torch's thread pool crawl."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_registry_names():
    assert list_networks() == sorted(NAMES)
    assert NORMS == ("instance", "batch", "layer", "none")


@pytest.mark.parametrize("channels,im_size,num_classes", SIZES, ids=["1x8x8", "1x28x28", "3x32x32"])
@pytest.mark.parametrize("name", NAMES)
def test_shapes_and_contract(name, channels, im_size, num_classes):
    torch.manual_seed(0)
    net = get_network(name, channels, num_classes, im_size)
    assert isinstance(net.classifier, nn.Linear)
    assert isinstance(net.feature_dim, int)
    assert net.classifier.in_features == net.feature_dim
    assert net.classifier.out_features == num_classes
    x = torch.randn(2, channels, im_size, im_size)
    with torch.no_grad():
        feats = net.embed(x)
        logits = net(x)
        assert torch.allclose(logits, net.classifier(feats), atol=1e-6)
    assert feats.shape == (2, net.feature_dim)
    assert logits.shape == (2, num_classes)
    # the logits must depend on the input (e.g. instance norm of a 1x1 map would make them constant)
    assert not torch.allclose(logits[0], logits[1], atol=1e-4)


@pytest.mark.parametrize("name", NAMES)
def test_gradients_reach_input(name):
    # distillation optimises the pixels, so every net must pass gradients back to them
    torch.manual_seed(0)
    net = get_network(name, 1, 10, 8)
    x = torch.randn(2, 1, 8, 8, requires_grad=True)
    net(x).pow(2).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 1e-6
    assert all(p.grad is not None for p in net.classifier.parameters())


def test_gradients_reach_input_convnet_32():
    torch.manual_seed(0)
    net = ConvNet(3, 10, 32)
    x = torch.randn(2, 3, 32, 32, requires_grad=True)
    nn.functional.cross_entropy(net(x), torch.tensor([1, 2])).backward()
    assert x.grad.abs().sum() > 1e-6


def test_convnet_reference_shapes():
    net = ConvNet(1, 10, 28)
    assert net.feature_dim == 2048  # 28 padded to 32 by the first conv, then 16, 8, 4 -> 128*4*4
    assert net.features[0].padding == (3, 3)
    assert ConvNet(3, 10, 32).feature_dim == 2048
    assert ConvNet(3, 10, (32, 32)).feature_dim == 2048
    assert ConvNet(1, 10, 8).feature_dim == 2048  # default depth 1 on 8x8 leaves a 4x4 map, as 3 does at 32
    assert ConvNet(1, 10, 8, depth=3).feature_dim == 128  # 8 -> 4 -> 2 -> 1

    small = ConvNet(3, 10, 32, width=64, depth=2)
    convs = [m for m in small.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 2 and all(c.out_channels == 64 for c in convs)
    assert small.feature_dim == 64 * 8 * 8
    norms = [m for m in small.modules() if isinstance(m, nn.GroupNorm)]
    assert len(norms) == 2 and all(n.num_groups == n.num_channels == 64 and n.affine for n in norms)


def test_convnet_variants():
    bn = get_network("convnet-bn", 3, 10, 32)
    assert any(isinstance(m, nn.BatchNorm2d) for m in bn.modules())
    ln = get_network("convnet-ln", 3, 10, 32)
    assert all(m.num_groups == 1 for m in ln.modules() if isinstance(m, nn.GroupNorm))
    nn_ = get_network("convnet-nn", 3, 10, 32)
    assert not any(isinstance(m, (nn.GroupNorm, nn.BatchNorm2d)) for m in nn_.modules())
    mx = ConvNet(3, 10, 32, pool="max", act="leakyrelu")
    assert any(isinstance(m, nn.MaxPool2d) for m in mx.modules())
    assert any(isinstance(m, nn.LeakyReLU) for m in mx.modules())
    nopool = ConvNet(1, 10, 8, width=16, depth=5, pool="none", act="sigmoid")
    assert nopool.feature_dim == 16 * 8 * 8


def test_get_network_kwargs_and_case():
    net = get_network("ConvNet", 3, 10, 32, width=64, depth=4)
    assert isinstance(net, ConvNet)
    assert net.feature_dim == 64 * 2 * 2
    assert type(get_network("VGG11-BN", 3, 10, 32)) is type(get_network("vgg11", 3, 10, 32))
    with pytest.raises(ValueError, match="fixes norm"):
        get_network("convnet-bn", 3, 10, 32, norm="instance")


def test_unknown_name_lists_known():
    with pytest.raises(ValueError) as e:
        get_network("resnet50", 3, 10, 32)
    assert "convnet" in str(e.value) and "resnet18" in str(e.value)


@pytest.mark.parametrize("kwargs,choices", [
    ({"norm": "group"}, "instance, batch, layer, none"),
    ({"act": "gelu"}, "relu, sigmoid, leakyrelu"),
    ({"pool": "lp"}, "avg, max, none"),
])
def test_bad_choice_lists_valid(kwargs, choices):
    with pytest.raises(ValueError, match=choices):
        ConvNet(3, 10, 32, **kwargs)


def test_bad_norm_other_nets():
    with pytest.raises(ValueError, match="instance, batch"):
        get_network("resnet18", 3, 10, 32, norm="group")


def test_too_deep_reports_max_depth():
    with pytest.raises(ValueError, match="largest depth that fits is 3"):
        ConvNet(1, 10, 8, depth=4)
    with pytest.raises(ValueError, match="largest depth that fits is 5"):
        get_network("convnet", 1, 10, 28, depth=6)
    ConvNet(1, 10, 8, depth=3)  # the maximum itself fits


@pytest.mark.parametrize("channels,num_classes", [(0, 10), (3, 0), (-1, 10), (3, 2.5), (True, 10)])
def test_bad_dims(channels, num_classes):
    with pytest.raises(ValueError, match="positive int"):
        get_network("convnet", channels, num_classes, 32)


def test_batchnorm_dry_run_leaves_stats_and_mode():
    net = get_network("convnet-bn", 3, 10, 32)
    assert net.training
    bn = next(m for m in net.modules() if isinstance(m, nn.BatchNorm2d))
    assert bn.num_batches_tracked.item() == 0
    assert torch.all(bn.running_mean == 0)


def test_convnet_overfits_tiny_batch():
    torch.manual_seed(0)
    x, y = torch.randn(20, 3, 16, 16), torch.randint(0, 10, (20,))
    net = ConvNet(3, 10, 16, width=32)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(50):
        opt.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    with torch.no_grad():
        acc = (net(x).argmax(1) == y).float().mean().item()
    assert acc == 1.0


def test_small_inputs_keep_reference_shapes_and_avoid_1x1_norm():
    assert get_network("vgg11", 3, 10, 32).feature_dim == 512
    assert get_network("vgg11", 1, 10, 28).feature_dim == 512  # 28 padded to 32
    assert get_network("alexnet", 3, 10, 32).feature_dim == 192 * 4 * 4
    assert get_network("alexnet", 1, 10, 28).feature_dim == 192 * 4 * 4
    assert get_network("lenet", 1, 10, 28).fc1.in_features == 16 * 5 * 5
    assert get_network("lenet", 3, 10, 32).fc1.in_features == 16 * 5 * 5
    # on 8x8 no GroupNorm(C, C) may see a 1x1 map: record the inputs every instance norm receives
    for name in ("vgg11", "resnet18"):
        net = get_network(name, 1, 10, 8)
        seen = []
        hooks = [m.register_forward_hook(lambda m, i, o: seen.append(i[0].shape[-2:]))
                 for m in net.modules() if isinstance(m, nn.GroupNorm)]
        net(torch.randn(2, 1, 8, 8))
        for h in hooks:
            h.remove()
        assert seen and min(min(s) for s in seen) >= 2, name


def test_default_depth_leaves_a_4x4_map():
    from dasm.nets import default_depth

    assert [default_depth(s) for s in (8, 28, 32, 64, 128)] == [1, 3, 3, 4, 5]
    assert ConvNet(1, 10, 28).feature_dim == ConvNet(1, 10, 28, depth=3).feature_dim
