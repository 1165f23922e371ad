import json
import os
import pickle
import struct
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import scratchdl
from scratchdl import (
    Conv2D,
    Dense,
    Dropout,
    LeakyReLU,
    Linear,
    ModelFormatError,
    NeuralNetwork,
    SoftmaxCrossEntropy,
    Tanh,
)
from scratchdl.io import modelfile, registry
from scratchdl.io.safetensors import HEADER_CAP, write_bytes


def make_net(dtype=np.float32, out=3):
    net = NeuralNetwork(
        [
            Dense(5, Tanh(), weight_init="glorot", dropout=0.8),
            Dropout(0.5),
            Dense(out, LeakyReLU(0.2)),
        ],
        SoftmaxCrossEntropy(),
        seed=3,
        dtype=dtype,
    )
    net.forward(np.zeros((1, 4)), inference=True)  # built, no dropout mask drawn
    return net


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "model.safetensors"
    make_net().save(path)
    return path


def raw_file(path, header: dict, data: bytes = b"", header_len: int | None = None):
    encoded = json.dumps(header).encode()
    size = len(encoded) if header_len is None else header_len
    path.write_bytes(struct.pack("<Q", size) + encoded + data)
    return path


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_round_trip_predicts_bitwise_the_same(tmp_path, dtype, rng):
    net = make_net(dtype)
    path = tmp_path / "m.safetensors"
    net.save(path)
    loaded = scratchdl.load(path)
    x = rng.standard_normal((6, 4))
    np.testing.assert_array_equal(loaded.predict(x), net.predict(x))
    assert loaded.dtype == dtype and loaded.seed == 3
    assert repr(loaded) == repr(net)
    assert [type(layer).__name__ for layer in loaded.layers] == ["Dense", "OperationLayer", "Dense"]


def test_loaded_network_trains_like_the_original(tmp_path, rng):
    net = make_net()
    path = tmp_path / "m.safetensors"
    net.save(path)
    loaded = scratchdl.load(path)
    x, y = rng.standard_normal((6, 4)), rng.integers(0, 3, 6)
    fresh = make_net()
    assert loaded.train_batch(x, y) == fresh.train_batch(x, y)  # same seeded dropout masks


def test_readable_by_the_safetensors_package(saved):
    st_numpy = pytest.importorskip("safetensors.numpy")
    tensors = st_numpy.load_file(str(saved))
    assert sorted(tensors) == [
        "layers.1.bias",
        "layers.1.weights",
        "layers.3.bias",
        "layers.3.weights",
    ]
    assert tensors["layers.1.weights"].shape == (4, 5)


def test_save_requires_a_built_network(tmp_path):
    net = NeuralNetwork([Dense(2)], SoftmaxCrossEntropy())
    with pytest.raises(ValueError, match="not built yet"):
        net.save(tmp_path / "m.safetensors")


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no model file"):
        scratchdl.load(tmp_path / "nothing.safetensors")


def expect_error(path, match):
    with pytest.raises(ModelFormatError, match=match):
        scratchdl.load(path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.safetensors"
    path.write_bytes(b"")
    expect_error(path, "too short")


@pytest.mark.parametrize("fraction", [0.001, 0.01, 0.3, 0.6, 0.99])
def test_truncated_file(saved, fraction):
    data = saved.read_bytes()
    saved.write_bytes(data[: max(1, int(len(data) * fraction))])
    with pytest.raises(ModelFormatError):
        scratchdl.load(saved)


def test_pickle_renamed(tmp_path):
    path = tmp_path / "model.safetensors"
    path.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    expect_error(path, "not a model file|beyond the end")


def test_header_larger_than_the_cap(tmp_path):
    path = tmp_path / "big.safetensors"
    path.write_bytes(struct.pack("<Q", HEADER_CAP + 1) + b"{}")
    expect_error(path, "exceeds the cap")


def test_forged_huge_shape_is_rejected_without_allocating(tmp_path):
    path = raw_file(tmp_path / "forged.safetensors",
                    {"layers.1.weights": {"dtype": "F32", "shape": [100000, 100000], "data_offsets": [0, 16]}},
                    b"\0" * 16)  # fmt: skip
    tracemalloc.start()
    with pytest.raises(ModelFormatError, match=r"declares shape \(100000, 100000\)"):
        scratchdl.load(path)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 50 * 1024 * 1024


def test_forged_architecture_needing_huge_weights_is_rejected_before_building(saved, tmp_path):
    tensors, metadata = scratchdl.io.safetensors.read(saved)
    arch = json.loads(metadata["architecture"])
    arch["layers"][0]["args"]["neurons"] = 10**8
    metadata["architecture"] = json.dumps(arch)
    path = tmp_path / "forged.safetensors"
    path.write_bytes(write_bytes(tensors, metadata))
    tracemalloc.start()
    with pytest.raises(
        ModelFormatError,
        match=r"layer 1 \(Dense\): the architecture needs at least 400,000,000 values for this layer, but the file holds 25",
    ):
        scratchdl.load(path)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 50 * 1024 * 1024


def rewrite(saved, tmp_path, change_arch=None, change_tensors=None):
    tensors, metadata = scratchdl.io.safetensors.read(saved)
    if change_arch:
        arch = json.loads(metadata["architecture"])
        change_arch(arch)
        metadata["architecture"] = json.dumps(arch)
    if change_tensors:
        change_tensors(tensors)
    path = tmp_path / "changed.safetensors"
    path.write_bytes(write_bytes(tensors, metadata))
    return path


def test_unknown_layer_type(saved, tmp_path):
    path = rewrite(saved, tmp_path, lambda a: a["layers"][0].update(type="Evil"))
    expect_error(path, "unknown layer type 'Evil'")


def test_type_naming_a_module_path(saved, tmp_path):
    path = rewrite(saved, tmp_path, lambda a: a["layers"][0].update(type="os.system"))
    expect_error(path, "module path is never accepted")
    path = rewrite(
        saved, tmp_path, lambda a: a["layers"][0]["args"]["activation"].update(type="builtins:eval")
    )
    expect_error(path, "unknown operation type 'builtins:eval'")


def test_nested_objects_are_refused_beyond_a_layer_activation(saved, tmp_path):
    def nest(arch):
        arch["layers"][0]["args"]["activation"]["args"]["alpha"] = {"type": "Tanh", "args": {}}

    expect_error(rewrite(saved, tmp_path, nest), "cannot be another object")
    deep = {"type": "Tanh", "args": {}}
    for _ in range(200):
        deep = {"type": "Tanh", "args": {"x": deep}}

    def very_deep(arch):
        arch["layers"][0]["args"]["activation"] = deep

    expect_error(rewrite(saved, tmp_path, very_deep), "cannot be another object")


def test_bad_constructor_arguments(saved, tmp_path):
    path = rewrite(saved, tmp_path, lambda a: a["layers"][0]["args"].update(neurons=-3))
    expect_error(path, "cannot build Dense")
    path = rewrite(saved, tmp_path, lambda a: a["layers"][0]["args"].update(evil="x"))
    expect_error(path, "cannot build Dense")


def test_missing_and_unexpected_parameters(saved, tmp_path):
    path = rewrite(saved, tmp_path, change_tensors=lambda t: t.pop("layers.3.bias"))
    expect_error(path, r"missing \['layers.3.bias'\], unexpected none")
    path = rewrite(
        saved,
        tmp_path,
        change_tensors=lambda t: t.update({"layers.9.extra": np.zeros(2, np.float32)}),
    )
    expect_error(path, r"missing none, unexpected \['layers.9.extra'\]")


def test_shape_mismatch_names_layer_and_shapes(tmp_path):
    path = tmp_path / "m.safetensors"
    NeuralNetwork([Dense(89, Tanh()), Dense(10, Linear())], SoftmaxCrossEntropy(), seed=0).summary(
        input_shape=(784,)
    )
    net10 = NeuralNetwork([Dense(89, Tanh()), Dense(10, Linear())], SoftmaxCrossEntropy(), seed=0)
    net10.summary(input_shape=(784,))
    net10.save(path)
    net12 = NeuralNetwork([Dense(89, Tanh()), Dense(12, Linear())], SoftmaxCrossEntropy(), seed=0)
    net12.summary(input_shape=(784,))
    with pytest.raises(
        ModelFormatError,
        match=r"layer 2 \(Dense\): weights: received shape \(89, 10\), the model has \(89, 12\)",
    ):
        net12.load_weights(path)


def test_wrong_dtype(saved, tmp_path):
    path = rewrite(
        saved,
        tmp_path,
        change_tensors=lambda t: t.update({"layers.1.bias": t["layers.1.bias"].astype(np.float64)}),
    )
    expect_error(path, r"layer 1 \(Dense\): bias: received dtype float64, the model has float32")
    path = raw_file(
        tmp_path / "i.safetensors",
        {"x": {"dtype": "I4", "shape": [1], "data_offsets": [0, 4]}},
        b"\0" * 4,
    )
    expect_error(path, "unsupported dtype 'I4'")


def test_non_finite_values_when_asked(saved, tmp_path):
    def poison(t):
        t["layers.1.weights"][0, 0] = np.nan

    path = rewrite(saved, tmp_path, change_tensors=poison)
    scratchdl.load(path)  # accepted unless the caller asks
    with pytest.raises(ModelFormatError, match="non-finite"):
        scratchdl.load(path, check_finite=True)


def test_not_a_scratchdl_file(tmp_path):
    path = tmp_path / "other.safetensors"
    path.write_bytes(write_bytes({"a": np.zeros(2, np.float32)}, {"format": "pt"}))
    expect_error(path, "not a scratchdl model file")


@pytest.mark.parametrize(
    ("header", "match"),
    [
        ([1, 2], "must be a JSON object"),
        ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}, "declares shape"),
        ({"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, "invalid shape"),
        ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, "starts at byte 4"),
        ({"a": {"dtype": "F32", "shape": [1]}}, "exactly dtype, shape and data_offsets"),
        ({"__metadata__": {"a": 1}}, "must map strings to strings"),
    ],
)
def test_malformed_headers(tmp_path, header, match):
    path = raw_file(tmp_path / "bad.safetensors", header, b"\0" * 8)
    expect_error(path, match)


def test_atomic_save_failure_leaves_the_previous_file(saved, monkeypatch):
    before = saved.read_bytes()
    net = make_net(out=3)
    net.layers[0].params[0][...] = 7.0

    def broken_fsync(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="disk full"):
        net.save(saved)
    assert saved.read_bytes() == before
    assert sorted(p.name for p in saved.parent.iterdir()) == [saved.name]


def test_atomic_save_failure_while_writing(saved, monkeypatch):
    before = saved.read_bytes()
    real_fdopen = os.fdopen

    class HalfWriter:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, data):
            self.f.write(data[: len(data) // 2])
            raise OSError("no space left on device")

    monkeypatch.setattr(os, "fdopen", lambda fd, mode: HalfWriter(real_fdopen(fd, mode)))
    with pytest.raises(OSError, match="no space left"):
        make_net().save(saved)
    assert saved.read_bytes() == before
    assert sorted(p.name for p in saved.parent.iterdir()) == [saved.name]


def test_save_failure_before_writing(saved, monkeypatch):
    before = saved.read_bytes()

    def broken(*args, **kwargs):
        raise RuntimeError("interrupted")

    monkeypatch.setattr(modelfile, "model_bytes", broken)
    with pytest.raises(RuntimeError, match="interrupted"):
        make_net().save(saved)
    assert saved.read_bytes() == before


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=400), flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=6),
       cut=st.integers(0, 10**6), mode=st.sampled_from(["random", "mutated"]))  # fmt: skip
def test_random_and_mutated_bytes_raise_only_model_format_error(
    tmp_path, saved, data, flips, cut, mode
):
    if mode == "mutated":
        raw = bytearray(saved.read_bytes())
        for position, value in flips:
            raw[position % len(raw)] = value
        data = bytes(raw[: max(cut % (len(raw) + 1), 0)]) if cut % 3 == 0 else bytes(raw)
    path = tmp_path / "fuzz.safetensors"
    path.write_bytes(data)
    try:
        scratchdl.load(path, check_finite=True)
    except ModelFormatError:
        pass


def test_round_trip_of_convolutional_layers_with_batch_norm_state(tmp_path, rng):
    from scratchdl import AvgPool2D, BatchNorm, Conv2D, GlobalAvgPool2D, MaxPool2D

    net = NeuralNetwork(
        [Conv2D(4, 3, activation="relu", weight_init="he"), BatchNorm(momentum=0.8), MaxPool2D(2),
         AvgPool2D(2, stride=1, padding=1), Conv2D(3, (2, 3), stride=2, padding="valid", bias=False),
         GlobalAvgPool2D(), Dense(2, Linear())],
        SoftmaxCrossEntropy(), seed=4,
    )  # fmt: skip
    x = rng.standard_normal((5, 2, 9, 8))
    for _ in range(3):
        net.train_batch(x, rng.integers(0, 2, 5))  # moves the batch-norm running statistics
    path = tmp_path / "cnn.safetensors"
    net.save(path)
    loaded = scratchdl.load(path)
    np.testing.assert_array_equal(loaded.predict(x), net.predict(x))
    saved_state = net.layers[1].named_state()
    for name, value in loaded.layers[1].named_state().items():
        np.testing.assert_array_equal(value, saved_state[name])
    assert saved_state["running_var"].std() > 0  # not the initial ones


def test_round_trip_keeps_the_books_dropout_form(tmp_path, rng):
    net = NeuralNetwork(
        [
            Conv2D(2, 3, activation="tanh", dropout=Dropout(0.7, inverted=False), flatten=True),
            Dense(5, Tanh(), dropout=Dropout(0.8, inverted=False)),
            Dropout(0.6, inverted=False),
            Dense(3, Linear()),
        ],
        SoftmaxCrossEntropy(),
        seed=1,
        dtype=np.float64,
    )
    x = rng.standard_normal((4, 1, 5, 5))
    expected = net.predict(x)  # scaled by keep_prob at every dropout
    path = tmp_path / "book.safetensors"
    net.save(path)
    loaded = scratchdl.load(path)
    assert repr(loaded) == repr(net)
    assert "inverted=False" in repr(loaded.layers[0]) and "inverted=False" in repr(loaded.layers[2])
    np.testing.assert_array_equal(loaded.predict(x), expected)
    # inverted dropout is still saved as a plain keep probability, as before `inverted` existed
    assert registry.to_spec(Dense(5, dropout=0.8))["args"]["dropout"] == 0.8
    old = registry.from_spec({"type": "Dropout", "args": {"keep_prob": 0.5}}, "operation", "op")
    assert old.inverted


def test_an_architecture_without_a_seed_loads_as_unseeded(saved, tmp_path, rng):
    """Found by the fuzzer: a missing 'seed' entry raised KeyError instead of loading (or a
    ModelFormatError); a seed of null is valid, so a missing one means the same."""
    path = rewrite(saved, tmp_path, change_arch=lambda arch: arch.pop("seed"))
    loaded = scratchdl.load(path)
    assert loaded.seed is None
    x = rng.standard_normal((3, 4))
    np.testing.assert_array_equal(loaded.predict(x), scratchdl.load(saved).predict(x))
