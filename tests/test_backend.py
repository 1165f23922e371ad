"""Every model on another array library: `array_api_strict` arrays on a non-CPU device.

`array_api_strict.Device("device1")` refuses every silent conversion to NumPy, as CuPy
does, so a NumPy call left in the training path fails here. Each test trains the same
model on NumPy and on the strict arrays and requires the same result in float64 to 1e-12.
The same suite runs on CuPy when a GPU is present (`test_cupy_*`, skipped otherwise).
"""

from __future__ import annotations

import numpy as np
import pytest

from scratchdl import (
    GRU,
    LSTM,
    RNN,
    SGD,
    AdaGrad,
    Adam,
    AdamW,
    AvgPool2D,
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    EarlyStopping,
    Embedding,
    Flatten,
    GlobalAvgPool2D,
    MaxPool2D,
    MeanSquaredError,
    NeuralNetwork,
    RMSProp,
    SGDMomentum,
    SoftmaxCrossEntropy,
    Trainer,
    backend,
    load,
    to_numpy,
)
from scratchdl.core import Operation
from scratchdl.layers.base import Layer

xs = pytest.importorskip("array_api_strict")
# a cross-library comparison (a NumPy dtype against a strict one) warns: make it fail
pytestmark = pytest.mark.filterwarnings("error")
DEVICE = xs.Device("device1")
TOL = 1e-12


@pytest.fixture(autouse=True)
def _im2col_on_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    """NumPy's convolutions take im2col here, the algorithm every other library runs: the
    direct kernels (scratchdl[fast]) sum in another order, which training amplifies past
    1e-12 (3e-12 after the conv model's SGDMomentum run). Their own tests compare them
    with loops; `test_direct_convolution_then_a_move` checks the move below."""
    monkeypatch.setattr(backend, "DIRECT_CONV_MAX_FILTERS", 0)


def _dense() -> NeuralNetwork:
    return NeuralNetwork(
        [
            Dense(16, "tanh", dropout=0.8, weight_init="glorot"),
            Dense(8, "leaky_relu", dropout=Dropout(0.9, inverted=False)),
            Dense(3, "sigmoid"),
            Dense(3, "linear"),
        ],
        SoftmaxCrossEntropy(),
        seed=3,
        dtype=np.float64,
    )


def _conv() -> NeuralNetwork:
    return NeuralNetwork(
        [
            # no bias before batch norm: its gradient would be rounding noise, which
            # adaptive optimizers scale up to whole steps
            Conv2D(4, 3, bias=False, activation="relu", weight_init="he"),
            BatchNorm(),
            MaxPool2D(2),
            Conv2D(3, 3, activation="tanh", padding="valid", dropout=0.9),
            AvgPool2D(2, stride=1, padding=1),
            MaxPool2D(2, stride=1),
            Flatten(),
            BatchNorm(),
            Dense(5, "relu"),
            Dense(3, "linear", dropout=0.8),
        ],
        SoftmaxCrossEntropy(),
        seed=4,
        dtype=np.float64,
    )


def _pool_global() -> NeuralNetwork:
    return NeuralNetwork(
        [Conv2D(3, 2, stride=2, padding="valid"), AvgPool2D(2), GlobalAvgPool2D(), Dense(2)],
        MeanSquaredError(normalize=True),
        seed=5,
        dtype=np.float64,
    )


def _recurrent() -> NeuralNetwork:
    return NeuralNetwork(
        [
            Embedding(11, 5),
            LSTM(6, return_sequences=True),
            GRU(4, return_sequences=True),
            RNN(4),
            Dense(3, "sigmoid"),
        ],
        MeanSquaredError(),
        seed=6,
        dtype=np.float64,
    )


def _data(model: str) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    if model == "dense":  # one-hot targets: the probability-row path of the loss
        return rng.standard_normal((40, 6)), np.eye(3)[rng.integers(0, 3, 40)]
    if model == "conv":  # integer labels
        return rng.standard_normal((24, 1, 8, 8)), rng.integers(0, 3, 24)
    if model == "pool_global":
        return rng.standard_normal((16, 2, 8, 8)), rng.random((16, 2))
    return rng.integers(0, 11, (16, 7)).astype(np.float64), rng.random((16, 3))


MODELS = {"dense": _dense, "conv": _conv, "pool_global": _pool_global, "recurrent": _recurrent}

OPTIMIZERS = {
    "sgd": lambda: SGD(lr=0.05, clip_value=0.5),
    "momentum": lambda: SGDMomentum(lr=0.02, momentum=0.9, nesterov=True, weight_decay=1e-3),
    "adagrad": lambda: AdaGrad(lr=0.02, clip_norm=1.0),
    "rmsprop": lambda: RMSProp(lr=0.005),
    "adam": lambda: Adam(lr=0.01),
    "adamw": lambda: AdamW(lr=0.01),
}


def _train(model: str, optimizer: str, where: tuple | None, epochs: int = 2) -> tuple:
    net = MODELS[model]()
    if where is not None:
        assert net.to(*where) is net
    trainer = Trainer(net, OPTIMIZERS[optimizer]())
    X, y = _data(model)
    trainer.fit(X, y, X[:8], y[:8], epochs=epochs, batch_size=8, verbose=0, seed=7)
    return net, trainer


def _host_arrays(net: NeuralNetwork) -> dict[str, np.ndarray]:
    return {name: np.array(to_numpy(array)) for name, array in net.arrays().items()}


def _assert_close(a: dict, b: dict, tol: float = TOL) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].dtype == b[name].dtype, name
        np.testing.assert_allclose(a[name], b[name], rtol=0, atol=tol, err_msg=name)


def _on_device(array: object) -> None:
    assert not isinstance(array, np.ndarray)
    assert array.device == DEVICE


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
@pytest.mark.parametrize("model", sorted(MODELS))
def test_training_on_strict_arrays_equals_numpy(model: str, optimizer: str) -> None:
    reference, ref_trainer = _train(model, optimizer, None)
    net, trainer = _train(model, optimizer, (xs, DEVICE))
    for array in net.arrays().values():
        _on_device(array)
    for entries in trainer.optim.state.values():
        for array in entries.values():
            _on_device(array)
    X, _ = _data(model)
    prediction = net.predict(X, batch_size=5)
    _on_device(prediction)
    np.testing.assert_allclose(to_numpy(prediction), reference.predict(X), rtol=0, atol=TOL)
    assert trainer.history.history["loss"] == pytest.approx(
        ref_trainer.history.history["loss"], abs=TOL
    )
    assert net.to(np) is net
    _assert_close(_host_arrays(net), _host_arrays(reference))
    for array in net.arrays().values():
        assert isinstance(array, np.ndarray)


def test_a_network_moved_between_fits_keeps_its_optimizer_state() -> None:
    """Adam's moments and step count move with the network; a lost state would restart
    them from zero and change every later step."""
    X, y = _data("conv")
    reference = _conv()
    ref_trainer = Trainer(reference, Adam(lr=0.01))
    net = _conv()
    trainer = Trainer(net, Adam(lr=0.01))
    for step, where in enumerate([None, (xs, DEVICE), (np,), (xs, DEVICE)]):
        if where is not None:
            net.to(*where)
        for t in (ref_trainer, trainer):
            t.fit(X, y, epochs=1, batch_size=8, verbose=0, seed=step, restart=step == 0)
    assert trainer.optim.iterations == ref_trainer.optim.iterations == 12
    net.to(np)
    _assert_close(_host_arrays(net), _host_arrays(reference))
    for name, entries in ref_trainer.optim.state.items():
        for key, value in entries.items():
            np.testing.assert_allclose(trainer.optim.state[name][key], value, rtol=0, atol=TOL)


def test_save_on_device_load_onto_numpy_and_back(tmp_path) -> None:
    net, _ = _train("recurrent", "adam", (xs, DEVICE))
    path = tmp_path / "model.safetensors"
    net.save(str(path))
    loaded = load(str(path))
    X, _ = _data("recurrent")
    expected = to_numpy(net.predict(X))
    np.testing.assert_array_equal(loaded.predict(X), expected)
    loaded.to(xs, DEVICE)
    moved = loaded.predict(X)
    _on_device(moved)
    np.testing.assert_array_equal(to_numpy(moved), expected)
    # a device network takes the weights of a file written from NumPy
    other = _recurrent().to(xs, DEVICE)
    other.predict(X[:1])
    other.load_weights(str(path))
    np.testing.assert_array_equal(to_numpy(other.predict(X)), expected)


def test_checkpoint_written_on_device_resumes_on_device(tmp_path) -> None:
    X, y = _data("conv")
    reference, _ = _train("conv", "momentum", None, epochs=3)
    path = str(tmp_path / "run.ckpt")
    net = _conv().to(xs, DEVICE)
    trainer = Trainer(net, OPTIMIZERS["momentum"]())
    trainer.fit(X, y, X[:8], y[:8], epochs=1, batch_size=8, verbose=0, seed=7)
    trainer.save_checkpoint(path)
    resumed = _conv().to(xs, DEVICE)
    again = Trainer(resumed, OPTIMIZERS["momentum"]())
    again.fit(X, y, X[:8], y[:8], epochs=3, batch_size=8, verbose=0, seed=7, resume_from=path)
    for entries in again.optim.state.values():
        for array in entries.values():
            _on_device(array)
    resumed.to(np)
    _assert_close(_host_arrays(resumed), _host_arrays(reference))


def test_early_stopping_restores_the_best_weights_on_device() -> None:
    X, y = _data("dense")

    def run(where: tuple | None) -> NeuralNetwork:
        net = _dense() if where is None else _dense().to(*where)
        stop = EarlyStopping(patience=0, restore_best=True, verbose=False)
        Trainer(net, SGD(lr=2.0)).fit(
            X, y, X[:8], y[:8], epochs=6, batch_size=8, verbose=0, seed=1, callbacks=[stop]
        )
        return net

    _assert_close(_host_arrays(run((xs, DEVICE))), _host_arrays(run(None)))


def test_moving_copies_each_parameter_once() -> None:
    """Only the operations' own arrays move; the constructor arguments an operation
    recorded (the initial weights) are not copied to the device a second time."""
    net = _conv()
    net.predict(_data("conv")[0][:2])
    net.to(xs, DEVICE)
    recorded = [v for layer in net.layers for op in layer.operations
                for v in vars(op).get("_init_args", {}).values() if backend.is_array(v)]  # fmt: skip
    assert recorded  # the filters, biases and batch-norm arrays the operations were made with
    assert all(isinstance(v, np.ndarray) for v in recorded)


def test_float32_network_on_device_stays_float32() -> None:
    net = NeuralNetwork([Dense(4, "tanh"), Dense(2, "linear")], MeanSquaredError(), seed=1)
    net.to(xs, DEVICE)
    X = np.random.default_rng(0).standard_normal((6, 3))
    prediction = net.predict(X)
    assert prediction.dtype == xs.float32
    reference = NeuralNetwork([Dense(4, "tanh"), Dense(2, "linear")], MeanSquaredError(), seed=1)
    np.testing.assert_array_equal(to_numpy(prediction), reference.predict(X))
    # device arrays in, device arrays out; a float64 device array is converted to float32
    again = net.predict(xs.asarray(X, device=DEVICE))
    np.testing.assert_array_equal(to_numpy(again), to_numpy(prediction))


def test_stateful_recurrent_layer_with_a_host_initial_state() -> None:
    X = np.random.default_rng(1).standard_normal((3, 4, 2))

    def run(where: tuple | None) -> list[np.ndarray]:
        layer = LSTM(5, return_sequences=True, stateful=True)
        layer.initial_state = (np.full((3, 5), 0.1), np.full((3, 5), -0.2))
        net = NeuralNetwork([layer, Dense(1, "linear")], MeanSquaredError(), dtype=np.float64)
        if where is not None:
            net.to(*where)
        return [to_numpy(net.predict(X)) for _ in range(2)]

    for got, want in zip(run((xs, DEVICE)), run(None), strict=True):
        np.testing.assert_allclose(got, want, rtol=0, atol=TOL)


def test_moving_a_built_network_before_any_training() -> None:
    X, _ = _data("dense")
    net = _dense()
    net.summary(input_shape=(6,))  # built on NumPy
    net.to(xs, DEVICE)
    for array in net.arrays().values():
        _on_device(array)
    reference = _dense()
    np.testing.assert_allclose(to_numpy(net.predict(X)), reference.predict(X), rtol=0, atol=TOL)


def test_a_numpy_operation_on_device_names_the_layer_and_the_fix() -> None:
    class BookTanh(Operation):  # written as the book writes it, with np.tanh
        def _output(self) -> np.ndarray:
            return np.tanh(self.input_)

        def _input_grad(self, output_grad: np.ndarray) -> np.ndarray:
            return output_grad * (1 - self.output**2)

    net = NeuralNetwork([Dense(3, BookTanh()), Dense(1)], MeanSquaredError(), dtype=np.float64)
    net.predict(np.ones((2, 4)))  # fine on NumPy
    net.to(xs, DEVICE)
    with pytest.raises(TypeError, match=r"layer 1 \(Dense\): BookTanh.*backend.namespace"):
        net.predict(np.ones((2, 4)))


def test_a_book_style_layer_is_set_up_on_the_host_and_moved() -> None:
    """`_setup_layer` gets a NumPy stand-in with the input's shape and dtype, so a layer
    that builds its parameters with NumPy (as the book's do) runs on any backend."""

    class Scale(Layer):
        def _setup_layer(self, input_: np.ndarray) -> None:
            from scratchdl import WeightMultiply

            assert isinstance(input_, np.ndarray)
            self.params = [np.ones((input_.shape[1], self.neurons), dtype=input_.dtype)]
            self.operations = [WeightMultiply(self.params[0])]

    net = NeuralNetwork([Scale(2)], MeanSquaredError(), dtype=np.float64).to(xs, DEVICE)
    out = net.predict(np.ones((3, 4)))
    _on_device(out)
    np.testing.assert_array_equal(to_numpy(out), np.full((3, 2), 4.0))
    _on_device(net.layers[0].params[0])


def test_to_refuses_what_is_not_an_array_library() -> None:
    net = _dense()
    with pytest.raises(TypeError, match="expected an array library"):
        net.to("cuda")
    with pytest.raises(ValueError, match="NumPy arrays live on the CPU"):
        net.to(np, device="gpu:0")


def test_distributed_training_refuses_a_device_network() -> None:
    net = _dense().to(xs, DEVICE)
    trainer = Trainer(net, SGD())
    trainer.dist = object()  # what Trainer(distributed=True) sets, without MPI
    X, y = _data("dense")
    with pytest.raises(ValueError, match="distributed=True trains NumPy networks"):
        trainer.fit(X, y, epochs=1, verbose=0)


def test_fit_and_evaluate_accept_device_data() -> None:
    X, y = _data("dense")
    reference, _ = _train("dense", "adam", None)
    net = _dense().to(xs, DEVICE)
    trainer = Trainer(net, OPTIMIZERS["adam"]())
    Xd, yd = xs.asarray(X, device=DEVICE), xs.asarray(y, device=DEVICE)
    trainer.fit(Xd, yd, Xd[:8, ...], yd[:8, ...], epochs=2, batch_size=8, verbose=0, seed=7)
    scores = trainer.evaluate(Xd, yd)
    assert scores["loss"] == pytest.approx(Trainer(reference, SGD()).evaluate(X, y)["loss"])
    net.to(np)
    _assert_close(_host_arrays(net), _host_arrays(reference))


def test_predict_checks_device_data() -> None:
    net = _dense().to(xs, DEVICE)
    bad = xs.asarray(np.array([[np.nan] * 6]), device=DEVICE)
    with pytest.raises(ValueError, match="NaN or inf"):
        net.predict(bad)


# --- the generic kernels against their NumPy fast paths --------------------------------------


@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("pad", [(0, 0, 0, 0), (1, 1, 1, 1), (0, 1, 2, 0)])
def test_generic_windows_match_numpy(stride: int, pad: tuple) -> None:
    x = np.random.default_rng(2).standard_normal((2, 3, 7, 6))
    d = xs.asarray(x, device=DEVICE)
    for kernel in [(2, 2), (3, 2)]:
        want = backend.windows(x, kernel, stride, pad, fill=-1.5)
        got = backend.windows(d, kernel, stride, pad, fill=-1.5)
        np.testing.assert_array_equal(to_numpy(got), want)
        cols, ho, wo = backend.im2col(x, kernel, stride, pad)
        dcols, dho, dwo = backend.im2col(d, kernel, stride, pad)
        assert (ho, wo) == (dho, dwo)
        np.testing.assert_array_equal(to_numpy(dcols), cols)
        grads = np.random.default_rng(3).standard_normal(want.shape)
        back = backend.scatter_windows(grads, x.shape, stride, pad)
        dback = backend.scatter_windows(xs.asarray(grads, device=DEVICE), x.shape, stride, pad)
        np.testing.assert_allclose(to_numpy(dback), back, rtol=0, atol=1e-14)


def test_generic_scatter_add_matches_numpy_add_at() -> None:
    rng = np.random.default_rng(4)
    ids = rng.integers(0, 5, 30)
    values = rng.standard_normal((30, 3))
    want = backend.scatter_add_rows((6, 3), ids, values)
    got = backend.scatter_add_rows(
        (6, 3), xs.asarray(ids, device=DEVICE), xs.asarray(values, device=DEVICE)
    )
    np.testing.assert_allclose(to_numpy(got), want, rtol=0, atol=1e-14)
    assert not want[5].any()


def test_to_numpy_and_namespace() -> None:
    x = np.arange(3.0)
    assert to_numpy(x) is x
    assert backend.namespace(x) is np
    d = xs.asarray(x, device=DEVICE)
    assert backend.namespace(d) is xs
    assert backend.resolve(xs) is xs
    assert backend.resolve(np) is np
    assert isinstance(to_numpy(d), np.ndarray)
    np.testing.assert_array_equal(to_numpy(d), x)
    assert to_numpy(3.0) == 3.0


# --- CuPy, when a GPU is present ----------------------------------------------------------------


def _cupy_device() -> tuple:
    cupy = pytest.importorskip("cupy")
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            raise RuntimeError("no device")
    except Exception as err:  # no driver, no device: CuPy imports but cannot run
        pytest.skip(f"no GPU for CuPy: {err}")
    return (cupy,)


@pytest.mark.parametrize("optimizer", ["adam", "momentum", "rmsprop"])
@pytest.mark.parametrize("model", sorted(MODELS))
def test_cupy_training_equals_numpy(model: str, optimizer: str) -> None:
    where = _cupy_device()
    reference, _ = _train(model, optimizer, None)
    net, _ = _train(model, optimizer, where)
    net.to(np)
    # a GPU's BLAS and transcendentals round differently from the CPU's
    _assert_close(_host_arrays(net), _host_arrays(reference), tol=1e-9)


# --- PyTorch tensors: a third array library, through array-api-compat ----------------------


@pytest.mark.parametrize("model", sorted(MODELS))
def test_torch_tensors_train_like_numpy(model: str) -> None:
    """Nothing in scratchdl names PyTorch; array-api-compat's namespace for its tensors is
    enough (CPU tensors here, so the same BLAS: equal to NumPy to 1e-12)."""
    torch = pytest.importorskip("torch")
    reference, _ = _train(model, "adam", None)
    net, _ = _train(model, "adam", (torch,))
    assert all(isinstance(a, torch.Tensor) for a in net.arrays().values())
    net.to(np)
    _assert_close(_host_arrays(net), _host_arrays(reference))


def test_generic_scatter_add_in_chunks_matches_numpy(monkeypatch) -> None:
    """The one-hot matrix of a large vocabulary is built a few ids at a time."""
    monkeypatch.setattr(backend, "ONE_HOT_ENTRIES", 60)  # 20 rows: chunks of 3 ids
    rng = np.random.default_rng(7)
    ids = rng.integers(0, 20, 10)
    values = rng.standard_normal((10, 2))
    got = backend.scatter_add_rows(
        (20, 2), xs.asarray(ids, device=DEVICE), xs.asarray(values, device=DEVICE)
    )
    want = np.zeros((20, 2))
    np.add.at(want, ids, values)
    np.testing.assert_allclose(to_numpy(got), want, rtol=0, atol=1e-14)


def test_a_network_deep_copies_and_pickles_with_its_backend() -> None:
    """The network records its array library (a module, which copy and pickle refuse):
    copies keep the library and device and drop the attached optimizers."""
    import copy
    import pickle

    X, _ = _data("dense")
    net, trainer = _train("dense", "adam", None, epochs=1)
    twin = pickle.loads(pickle.dumps(net))
    np.testing.assert_array_equal(twin.predict(X), net.predict(X))
    assert twin.xp is np and len(twin._optimizers) == 0 and len(net._optimizers) == 1
    net.to(xs, DEVICE)
    moved = copy.deepcopy(net)
    assert moved.xp is xs and moved.device == DEVICE
    _on_device(moved.predict(X))
    np.testing.assert_array_equal(to_numpy(moved.predict(X)), to_numpy(net.predict(X)))
    moved.to(np)  # moving the copy leaves the original (and its optimizer) where it was
    _on_device(next(iter(trainer.optim.state.values()))["m"])


def test_the_network_does_not_keep_old_optimizers_alive() -> None:
    import gc

    net = _dense()
    for _ in range(3):
        Trainer(net, Adam()).fit(*_data("dense"), epochs=1, batch_size=8, verbose=0)
    gc.collect()
    assert len(net._optimizers) == 0


def _grads_before_and_after_a_move(direct: bool = False) -> tuple[list, list]:
    """The conv model's parameter gradients from one batch: backward on NumPy, and
    backward after moving the network (and the loss gradient) between forward and
    backward; with `direct`, checking that the forward pass took the direct kernels."""
    X, y = _data("conv")
    grads = []
    for move in (False, True):
        net = _conv()
        prediction = net.forward(X[:4])
        if direct:
            assert net.layers[0].operations[0]._cols is None  # the direct path ran
        net.loss.forward(prediction, y[:4])
        output_grad = net.loss.backward()
        if move:
            net.to(xs, DEVICE)
            output_grad = xs.asarray(output_grad, device=DEVICE)
        net.backward(output_grad)
        grads.append([np.array(to_numpy(g)) for g in net.param_grads()])
    return grads[0], grads[1]


def test_direct_convolution_then_a_move(monkeypatch: pytest.MonkeyPatch, fast_off) -> None:
    """A forward pass through the direct kernels caches the padded input, not an im2col
    matrix; a backward pass after a move builds the matrix from it on the device."""
    pytest.importorskip("numba")
    fast_off(True)
    monkeypatch.setattr(backend, "DIRECT_CONV_MAX_FILTERS", 15)
    on_numpy, moved = _grads_before_and_after_a_move(direct=True)
    for got, want in zip(moved, on_numpy, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def test_backward_right_after_a_move_uses_what_the_forward_cached() -> None:
    """Caches move with the network, so a backward pass may follow a move directly (the
    compiled max-pool's winners included, when scratchdl[fast] is installed)."""
    on_numpy, moved = _grads_before_and_after_a_move()
    for got, want in zip(moved, on_numpy, strict=True):
        np.testing.assert_allclose(got, want, rtol=0, atol=TOL)
