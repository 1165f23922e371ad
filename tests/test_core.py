import numpy as np
import pytest

from scratchdl import Operation, ParamOperation, ShapeError, Tanh


class WrongInputGrad(Operation):
    def _output(self, inference):
        return self.input_ * 2

    def _input_grad(self, output_grad):
        return output_grad[:, :1]


class WrongParamGrad(ParamOperation):
    def _output(self, inference):
        return self.input_ * self.param

    def _input_grad(self, output_grad):
        return output_grad * self.param

    def _param_grad(self, output_grad):
        return np.sum(output_grad * self.input_)  # forgot the per-element shape


def test_shape_error_is_value_error():
    assert issubclass(ShapeError, ValueError)


def test_backward_checks_output_grad_shape(rng):
    op = Tanh()
    op.forward(rng.standard_normal((3, 4)))
    with pytest.raises(
        ShapeError, match=r"Tanh: output_grad must have shape \(3, 4\), received \(3, 5\)"
    ):
        op.backward(np.ones((3, 5)))


def test_backward_checks_input_grad_shape(rng):
    op = WrongInputGrad()
    op.forward(rng.standard_normal((3, 4)))
    with pytest.raises(
        ShapeError, match=r"WrongInputGrad: input_grad must have shape \(3, 4\), received \(3, 1\)"
    ):
        op.backward(np.ones((3, 4)))


def test_param_grad_shape_is_checked(rng):
    op = WrongParamGrad(np.ones((1, 4)))
    op.forward(rng.standard_normal((3, 4)))
    with pytest.raises(
        ShapeError, match=r"WrongParamGrad: param_grad must have shape \(1, 4\), received \(\)"
    ):
        op.backward(np.ones((3, 4)))


def test_backward_before_forward_is_a_clear_error():
    with pytest.raises(RuntimeError, match="Tanh: backward\\(\\) called before forward\\(\\)"):
        Tanh().backward(np.ones((2, 2)))


def test_forward_stores_input_and_output(rng):
    x = rng.standard_normal((2, 3))
    op = Tanh()
    out = op.forward(x)
    assert op.input_ is x
    assert op.output is out
    np.testing.assert_allclose(out, np.tanh(x))
