"""Losses: `forward(prediction, target) -> float` and `backward() -> d(loss)/d(prediction)`."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from scratchdl import backend
from scratchdl.backend import device_of, namespace
from scratchdl.core import RecordsArguments, ShapeError, check_flag, shape_error
from scratchdl.ops.activations import _exp_limit

__all__ = ["Loss", "MeanSquaredError", "SoftmaxCrossEntropy"]


class Loss(RecordsArguments):
    """Base class. Subclasses implement `_output()` and `_input_grad()`.

    `forward` checks the target against the prediction (`_prepare_target`), stores both,
    and returns the loss as a Python float; `backward` returns the gradient with respect
    to the prediction and checks it has the prediction's shape.
    """

    prediction: np.ndarray
    target: np.ndarray

    @property
    def name(self) -> str:
        return type(self).__name__

    def forward(self, prediction: np.ndarray, target: np.ndarray) -> float:
        """The loss of `prediction` against `target`.

        The prediction may be an array of any backend (`NeuralNetwork.to`); the target is
        checked on the host (as NumPy) and moved to the prediction's backend."""
        if not isinstance(prediction, np.ndarray) and backend.is_array(prediction):
            self._check_rows(prediction)
            return self._device_forward(prediction, target)
        prediction = np.asarray(prediction)
        self._check_rows(prediction)
        if not np.issubdtype(prediction.dtype, np.floating):
            prediction = prediction.astype(np.float64)
        self.prediction = prediction
        self.target = self._prepare_target(prediction, np.asarray(backend.to_numpy(target)))
        return float(self._output())

    def _check_rows(self, prediction: Any) -> None:
        """A loss is a mean over the rows of a batch: an empty batch has none."""
        if prediction.ndim == 0 or prediction.shape[0] == 0:
            raise ShapeError(
                f"{self.name}: the prediction must have at least one row (a loss is a mean "
                f"over the batch), received shape {tuple(prediction.shape)}"
            )

    def _device_forward(self, prediction: Any, target: Any) -> float:
        """`forward` for a prediction on another backend: the checks run on a host stand-in
        for the prediction (shape and dtype only), then the target moves to the device."""
        self.prediction = prediction
        stand_in = backend.host_stand_in(prediction)
        target = self._prepare_target(stand_in, np.asarray(backend.to_numpy(target)))
        self.target = backend.like(target, prediction)
        if getattr(self, "_labels", None) is not None:
            self._labels = self.target
        return float(self._output())

    def backward(self) -> np.ndarray:
        """d(loss)/d(prediction) for the last `forward`."""
        if getattr(self, "prediction", None) is None:
            raise RuntimeError(f"{self.name}: backward() called before forward()")
        self.input_grad = self._input_grad()
        if self.input_grad.shape != self.prediction.shape:
            raise shape_error(self.name, "input_grad", self.prediction.shape, self.input_grad.shape)
        return self.input_grad

    def check_target(self, target: np.ndarray, where: str) -> None:
        """Raise if `target` (a whole data set's, at the public boundary) holds values this
        loss cannot mean; a subclass adds its own rules. Shapes are checked per batch."""

    def _prepare_target(self, prediction: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Check and convert the target; the default requires the prediction's shape."""
        if target.shape != prediction.shape:
            raise ShapeError(
                f"{self.name}: target must have the prediction's shape {prediction.shape}, "
                f"received {target.shape}"
            )
        return target.astype(prediction.dtype, copy=False)

    def _output(self) -> float:
        raise NotImplementedError(f"{self.name} must implement _output")

    def _input_grad(self) -> np.ndarray:
        raise NotImplementedError(f"{self.name} must implement _input_grad")

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class MeanSquaredError(Loss):
    """Sum of squared errors divided by the batch size, as in the book.

    With ``normalize=True`` each prediction row is first divided by its sum (the book's
    option for comparing a sigmoid output with one-hot targets); unlike the book's code,
    the gradient includes that normalisation. A 1-D target for a (batch, 1) prediction is
    read as a column.
    """

    def __init__(self, normalize: bool = False) -> None:
        self.normalize = check_flag("MeanSquaredError", "normalize", normalize)

    def _prepare_target(self, prediction: np.ndarray, target: np.ndarray) -> np.ndarray:
        if target.ndim == 1 and prediction.shape == (target.shape[0], 1):
            target = target.reshape(-1, 1)
        return super()._prepare_target(prediction, target)

    def _output(self) -> float:
        p = self.prediction
        if self.normalize:
            self._row_sum = namespace(p).sum(p, axis=-1, keepdims=True)
            p = p / self._row_sum
        self._normalized = p
        diff = p - self.target
        if isinstance(diff, np.ndarray):
            return float((diff * diff).sum()) / p.shape[0]
        return float(namespace(diff).sum(diff * diff)) / p.shape[0]

    def _input_grad(self) -> np.ndarray:
        q = self._normalized
        grad = (q - self.target) * (2.0 / q.shape[0])
        if self.normalize:
            # d q_j / d p_i = (delta_ij - q_j) / s for q = p / s, s = sum(p)
            xp = namespace(q)
            grad = (grad - xp.sum(grad * q, axis=-1, keepdims=True)) / self._row_sum
        return grad

    def __repr__(self) -> str:
        return "MeanSquaredError(normalize=True)" if self.normalize else "MeanSquaredError()"


class SoftmaxCrossEntropy(Loss):
    """Cross-entropy of softmax(logits) against the targets, averaged over examples.

    `prediction` holds logits with classes on the last axis: (batch, classes) or
    (batch, time, classes). `target` is either integer class labels of shape
    prediction.shape[:-1], or one-hot (or any probability) rows of the prediction's shape.
    The loss uses log-sum-exp, so logits of any size give finite values; the gradient is
    (softmax - target) / number of examples, the exact derivative of the returned value.

    `eps` is accepted for the book's signature, where it clipped the softmax to
    [eps, 1 - eps] before taking logs; log-sum-exp needs no clipping, so it changes nothing.
    The book's reported value also added a (1 - t)·log(1 - p) term that its gradient ignored;
    this loss is the plain cross-entropy that the gradient belongs to.
    """

    def __init__(self, eps: float = 1e-9) -> None:
        if (
            isinstance(eps, bool)
            or not isinstance(eps, (int, float, np.floating))
            or not 0 < eps < 0.5
        ):
            raise ValueError(
                f"SoftmaxCrossEntropy: eps must be a number in (0, 0.5). Received: eps={eps!r}"
            )
        self.eps = float(eps)

    def check_target(self, target: np.ndarray, where: str) -> None:
        """Class labels must be whole numbers >= 0; probability rows (floats with fractions)
        must be >= 0 and sum to 1."""
        if not target.size:
            return
        whole = np.issubdtype(target.dtype, np.integer) or bool(np.all(np.mod(target, 1) == 0))
        if whole:  # class labels, or one-hot rows (their shape is checked per batch)
            if target.min() < 0:
                raise ValueError(
                    f"{where}: class labels must be >= 0 for {self.name}; received {target.min()}"
                )
            return
        if target.min() < 0:
            raise ValueError(
                f"{where}: {self.name} targets are class labels or probability rows, which "
                f"cannot be negative; received {target.min():g}"
            )
        sums = target.reshape(-1, target.shape[-1]).sum(axis=-1)
        if not np.allclose(sums, 1.0, atol=1e-3):
            row = int(np.argmax(np.abs(sums - 1.0)))
            raise ValueError(
                f"{where}: {self.name} probability rows (one-hot or soft labels) must sum to 1; "
                f"row {row} sums to {sums[row]:g}. For class labels pass integers"
            )

    def _prepare_target(self, prediction: np.ndarray, target: np.ndarray) -> np.ndarray:
        if prediction.ndim < 2:
            raise ShapeError(
                f"{self.name}: prediction must have shape (batch, classes), received {prediction.shape}"
            )
        if target.shape == prediction.shape:
            self._labels = None
            return target.astype(prediction.dtype, copy=False)
        if target.ndim == prediction.ndim and target.shape[-1] == 1:
            target = target.reshape(target.shape[:-1])
        if target.shape != prediction.shape[:-1]:
            hint = ""
            if prediction.ndim > 2 and target.ndim < prediction.ndim - 1:
                hint = (
                    "; the prediction has an extra axis: did you mean to flatten the input "
                    "(X.reshape(len(X), -1)) before the first Dense layer?"
                )
            raise ShapeError(
                f"{self.name}: target must be class labels of shape {prediction.shape[:-1]} "
                f"or one-hot rows of shape {prediction.shape}, received {target.shape}{hint}"
            )
        labels = target
        if not np.issubdtype(labels.dtype, np.integer):
            if labels.size and not np.all(np.mod(labels, 1) == 0):
                raise ValueError(
                    f"{self.name}: class labels must be whole numbers. Received dtype {target.dtype} "
                    "with fractional values"
                )
            labels = labels.astype(np.int64)
        n_classes = prediction.shape[-1]
        if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
            bad = (labels < 0) | (labels >= n_classes)
            where = tuple(int(i[0]) for i in np.nonzero(bad))
            raise ValueError(
                f"{self.name}: class labels must be in [0, {n_classes}). "
                f"Received: label {labels[where]} at index {where}"
            )
        self._labels = labels
        return labels

    def _output(self) -> float:
        z = self.prediction
        if not isinstance(z, np.ndarray):
            return self._device_output(z)
        n_classes = z.shape[-1]
        self._count = z.size // n_classes
        # scratchdl[fast]: two compiled passes, the same bits
        fused = backend.softmax_cross_entropy(
            z.reshape(-1, n_classes), self._flat_target(), -_exp_limit(z.dtype)
        )
        if fused is not None:
            softmax, total = fused
            self._softmax = softmax.reshape(z.shape)
            return total / self._count
        shifted = z - z.max(axis=-1, keepdims=True)
        exp = np.exp(np.maximum(shifted, -_exp_limit(z.dtype)))
        sum_exp = exp.sum(axis=-1, keepdims=True)
        self._softmax = exp / sum_exp
        log_sum_exp = np.log(sum_exp)  # log_softmax = shifted - log_sum_exp
        if self._labels is None:
            total = float((self.target * log_sum_exp).sum()) - float((self.target * shifted).sum())
        else:
            rows = shifted.reshape(-1, n_classes)
            picked = rows[np.arange(self._count), self._labels.reshape(-1)]
            total = float(log_sum_exp.sum()) - float(picked.sum())
        return total / self._count

    def _flat_target(self) -> np.ndarray:
        """The target as the compiled kernels take it: class labels as one row of `np.intp`,
        probability rows as (rows, classes)."""
        if self._labels is not None:
            return self._labels.reshape(-1).astype(np.intp, copy=False)
        return self.target.reshape(-1, self.target.shape[-1])

    def _device_output(self, z: Any) -> float:
        """`_output` in the standard's functions, for other array libraries (the NumPy
        path above uses methods and fancy indexing, which cost less per batch)."""
        xp = namespace(z)
        n_classes = z.shape[-1]
        self._count = math.prod(z.shape) // n_classes
        shifted = z - xp.max(z, axis=-1, keepdims=True)
        exp = xp.exp(xp.maximum(shifted, -_exp_limit(z.dtype)))
        sum_exp = xp.sum(exp, axis=-1, keepdims=True)
        self._softmax = exp / sum_exp
        log_sum_exp = xp.log(sum_exp)
        if self._labels is None:
            total = float(xp.sum(self.target * log_sum_exp)) - float(xp.sum(self.target * shifted))
        else:
            rows = xp.reshape(shifted, (-1, n_classes))
            labels = xp.reshape(self._labels, (-1, 1))
            picked = xp.take_along_axis(rows, labels, axis=1)
            total = float(xp.sum(log_sum_exp)) - float(xp.sum(picked))
        return total / self._count

    def _input_grad(self) -> np.ndarray:
        softmax = self._softmax
        if isinstance(softmax, np.ndarray):
            fused = backend.softmax_cross_entropy_grad(  # scratchdl[fast]: the same bits
                softmax.reshape(-1, softmax.shape[-1]), self._flat_target(), 1.0 / self._count
            )
            if fused is not None:
                return fused.reshape(softmax.shape)
            grad = softmax.copy()
            if self._labels is None:
                grad -= self.target
            else:
                flat = grad.reshape(-1, grad.shape[-1])
                flat[np.arange(flat.shape[0]), self._labels.reshape(-1)] -= 1
        elif self._labels is None:
            grad = softmax - self.target
        else:  # the standard has no integer-array assignment: subtract the one-hot rows
            xp = namespace(softmax)
            classes = xp.arange(
                softmax.shape[-1], dtype=self._labels.dtype, device=device_of(softmax)
            )
            grad = xp.where(self._labels[..., None] == classes, softmax - 1.0, softmax)
        grad *= 1.0 / self._count
        return grad
