import importlib

import pytest

import scratchdl


@pytest.mark.parametrize(
    "module",
    [
        "scratchdl.layers",
        "scratchdl.ops",
        "scratchdl.optim",
        "scratchdl.training",
        "scratchdl.losses",
    ],
)
def test_everything_public_is_importable_from_the_top(module):
    mod = importlib.import_module(module)
    for name in mod.__all__:
        assert name in scratchdl.__all__, f"{module}.{name} is not exported by scratchdl"
        assert getattr(scratchdl, name) is getattr(mod, name)


def test_book_names_exist():
    for name in ["Operation", "ParamOperation", "Layer", "Dense", "NeuralNetwork", "Loss", "Optimizer", "Trainer",
                 "SGDMomentum", "Tanh", "Sigmoid", "Linear", "Conv2D", "MeanSquaredError", "SoftmaxCrossEntropy"]:  # fmt: skip
        assert hasattr(scratchdl, name)
    for method in ["forward", "backward", "train_batch", "params", "param_grads"]:
        assert callable(getattr(scratchdl.NeuralNetwork, method))
