"""The architectures: output shapes, the seed's CNNModel kept layer for layer, Standardised."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from digitrec.models import (
    ARCHITECTURES,
    MNIST_MEAN,
    MNIST_STD,
    CNNModel,
    Standardised,
    build_model,
)

SEED_CNN_PARAMETERS = 206_922  # (16*9+16) + (32*16*9+32) + (1568*128+128) + (128*10+10)


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
@pytest.mark.parametrize("batch", [1, 5])
def test_build_model_gives_ten_logits_per_image(name: str, batch: int) -> None:
    torch.manual_seed(0)
    model = build_model(name).eval()
    with torch.no_grad():
        logits = model(torch.rand(batch, 1, 28, 28))  # (N, 1, 28, 28) -> (N, 10)
    assert logits.shape == (batch, 10)
    assert torch.isfinite(logits).all()


def test_build_model_refuses_an_unknown_name() -> None:
    with pytest.raises(ValueError, match="lenet5"):
        build_model("resnet")


def test_build_model_makes_fresh_weights_each_time() -> None:
    first, second = build_model("seed-cnn"), build_model("seed-cnn")
    assert not torch.equal(first.conv1.weight, second.conv1.weight)


def test_cnn_model_keeps_the_seed_layers() -> None:
    model = CNNModel()

    assert (model.conv1.in_channels, model.conv1.out_channels) == (1, 16)
    assert (model.conv2.in_channels, model.conv2.out_channels) == (16, 32)
    for conv in (model.conv1, model.conv2):
        assert isinstance(conv, nn.Conv2d)
        assert conv.kernel_size == (3, 3) and conv.padding == (1, 1) and conv.stride == (1, 1)
    assert isinstance(model.pool, nn.MaxPool2d)
    assert model.pool.kernel_size == 2 and model.pool.stride == 2
    assert isinstance(model.dropout, nn.Dropout) and model.dropout.p == 0.25
    assert (model.fc1.in_features, model.fc1.out_features) == (1568, 128)
    assert (model.fc2.in_features, model.fc2.out_features) == (128, 10)
    assert isinstance(model.relu, nn.ReLU)


def test_cnn_model_has_the_seed_parameter_count() -> None:
    assert sum(p.numel() for p in CNNModel().parameters()) == SEED_CNN_PARAMETERS


def test_cnn_model_has_no_other_weighted_layers() -> None:
    weighted = {
        name
        for name, module in CNNModel().named_modules()
        if list(module.parameters(recurse=False))
    }
    assert weighted == {"conv1", "conv2", "fc1", "fc2"}


def test_cnn_model_drops_out_only_in_training() -> None:
    torch.manual_seed(0)
    model, x = CNNModel(), torch.rand(4, 1, 28, 28)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), model(x))
        model.train()
        assert not torch.equal(model(x), model(x))


def test_standardised_divides_the_logits_by_its_temperature() -> None:
    torch.manual_seed(0)
    net = build_model("lenet5").eval()
    x = torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        cold, hot = Standardised(net, 1.0)(x), Standardised(net, 4.0)(x)
    torch.testing.assert_close(hot, cold / 4.0)


def test_standardised_feeds_the_network_mnist_standardised_pixels() -> None:
    torch.manual_seed(0)
    net = build_model("lenet5").eval()
    x = torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        expected = net((x - 0.1307) / 0.3081)  # MNIST's training-set mean and std
        torch.testing.assert_close(Standardised(net)(x), expected)
    assert (MNIST_MEAN, MNIST_STD) == (0.1307, 0.3081)


def test_standardised_keeps_its_temperature_in_the_state_dict() -> None:
    model = Standardised(build_model("lenet5"), temperature=1.7)
    state = model.state_dict()
    assert float(state["temperature"]) == pytest.approx(1.7)
    assert {key.split(".")[0] for key in state} == {"temperature", "net"}
