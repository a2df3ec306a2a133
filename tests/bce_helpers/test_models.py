"""bce_helpers.models against parameter counts computed by hand from the layer sizes, the
guide's nn.Sequential with the same weights, and Keras's initialisation rule."""

import math

import pytest
import torch
from torch import nn

from bce_helpers.models import MLP, ConstantLogit, keras_style_mlp


def linear_parameters(sizes: list[int]) -> int:
    """Weights and biases of fully connected layers sizes[0] -> sizes[1] -> ...: (m + 1) n each."""
    return sum((m + 1) * n for m, n in zip(sizes, sizes[1:], strict=False))


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("sigmoid", [True, False])
def test_mlp_has_the_guides_parameter_count(sigmoid):
    # 3 x 28 x 28 = 2352 inputs, then 64, 32 and 1: 150,592 + 2,080 + 33 = 152,705
    assert count(MLP(sigmoid=sigmoid)) == linear_parameters([2352, 64, 32, 1]) == 152_705
    assert count(MLP(in_features=16, sigmoid=sigmoid)) == linear_parameters([16, 64, 32, 1])


def the_guides_mlp(in_features: int) -> nn.Sequential:
    """The guide's model as it writes it: Flatten, Linear and ReLU layers, a Sigmoid."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(in_features, 64),
        nn.ReLU(),
        nn.Linear(64, 32),
        nn.ReLU(),
        nn.Linear(32, 1),
        nn.Sigmoid(),
    )


@pytest.mark.parametrize(("shape", "in_features"), [((5, 3, 28, 28), 2352), ((7, 1, 4, 4), 16)])
def test_mlp_is_the_guides_sequential_given_the_same_weights(shape, in_features):
    torch.manual_seed(0)
    guide = the_guides_mlp(in_features)
    mlp, logits = MLP(in_features=in_features), MLP(in_features=in_features, sigmoid=False)
    mlp.layers.load_state_dict(guide.state_dict())
    logits.layers.load_state_dict(guide[:-1].state_dict())
    x = torch.rand(shape)
    expected = guide(x)
    assert expected.shape == (shape[0], 1)
    assert torch.equal(mlp(x), expected)
    # without the Sigmoid its outputs are the logits of the same probabilities
    assert torch.equal(logits(x), guide[:-1](x))
    assert not torch.equal(logits(x), expected)


def test_mlp_by_default_takes_the_guides_28_by_28_colour_images():
    assert MLP()(torch.rand(2, 3, 28, 28)).shape == (2, 1)
    with pytest.raises(RuntimeError):
        MLP()(torch.rand(2, 1, 28, 28))  # 784 inputs, not 2352


def test_constant_logit_predicts_its_one_learned_bias_for_every_input():
    model = ConstantLogit()
    assert count(model) == 1
    assert model(torch.rand(7, 2)).tolist() == [[0.0]] * 7  # starts at logit 0: p = 0.5
    with torch.no_grad():
        model.bias.fill_(1.5)
    out = model(torch.rand(4, 3, 2))
    assert out.shape == (4, 1) and out.flatten().tolist() == [1.5] * 4
    # the mean of its outputs has gradient 1 with respect to the bias
    out.mean().backward()
    assert model.bias.grad.tolist() == [1.0]


@pytest.mark.parametrize(("in_features", "hidden"), [(2, 100), (5, 8)])
def test_keras_style_mlp_is_dense_relu_dense_sigmoid_with_glorot_weights_and_zero_biases(
    in_features, hidden
):
    torch.manual_seed(0)
    model = keras_style_mlp(in_features, hidden)
    assert [type(layer) for layer in model] == [nn.Linear, nn.ReLU, nn.Linear, nn.Sigmoid]
    assert count(model) == linear_parameters([in_features, hidden, 1])
    for layer, fan_in, fan_out in ((model[0], in_features, hidden), (model[2], hidden, 1)):
        assert layer.weight.shape == (fan_out, fan_in)
        assert torch.count_nonzero(layer.bias) == 0
        limit = math.sqrt(6 / (fan_in + fan_out))  # glorot-uniform: U(-limit, limit)
        assert layer.weight.abs().max() <= limit
    # 200 draws of U(-limit, limit) for the default first layer: spread over the whole range
    first = keras_style_mlp().state_dict()["0.weight"]
    assert first.shape == (100, 2), "by default notebook 06's Dense(100) on 2 features"
    limit = math.sqrt(6 / (2 + 100))
    assert first.abs().max() > 0.9 * limit
    assert first.var().item() == pytest.approx(limit**2 / 3, rel=0.3)
    out = model(torch.randn(6, in_features))
    assert out.shape == (6, 1) and ((out > 0) & (out < 1)).all()
