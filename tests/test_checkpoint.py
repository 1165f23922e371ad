import subprocess
import sys

import numpy as np
import pytest

from scratchdl import (
    SGD,
    Adam,
    Callback,
    Dense,
    Linear,
    MeanSquaredError,
    ModelCheckpoint,
    ModelFormatError,
    NeuralNetwork,
    SGDMomentum,
    Tanh,
    Trainer,
)
from tests.conftest import REPO

SCRIPT = REPO / "tests" / "resume_run.py"


def run(tmp_path, name, *args, expect=0):
    out = tmp_path / f"{name}.npz"
    result = subprocess.run([sys.executable, str(SCRIPT), str(out), *map(str, args)],
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == expect, result.stderr
    return np.load(out) if expect == 0 else None


def assert_same(a, b):
    assert sorted(a.files) == sorted(b.files)
    for key in a.files:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
def test_resume_at_epoch_end_is_bit_identical(tmp_path, dtype, optimizer):
    straight = run(tmp_path, "straight", dtype, 2, "--optimizer", optimizer)
    ckpt = tmp_path / "ckpt.safetensors"
    # a run planned over 2 epochs, killed in the second (checkpoint after the first epoch's 8
    # batches), resumed for the rest
    run(tmp_path, "first", dtype, 2, "--optimizer", optimizer, "--checkpoint", ckpt,
        "--every", 8, "--stop-after-batches", 9, expect=3)  # fmt: skip
    resumed = run(tmp_path, "resumed", dtype, 2, "--optimizer", optimizer, "--resume", ckpt)
    assert_same(straight, resumed)


@pytest.mark.parametrize("threads", [1, 2])
def test_resume_after_a_crash_mid_epoch_is_bit_identical(tmp_path, threads):
    # with threads=2 the second part's dropout masks come from a replica's generator, which
    # every step reseeds from the network's (the state a checkpoint keeps)
    straight = run(tmp_path, "straight", "float32", 3, "--threads", threads)
    ckpt = tmp_path / "ckpt.safetensors"
    # 8 batches per epoch; crash after 13 batches, the last checkpoint was after batch 12
    run(
        tmp_path,
        "crash",
        "float32",
        3,
        "--checkpoint",
        ckpt,
        "--every",
        3,
        "--stop-after-batches",
        13,
        "--threads",
        threads,
        expect=3,
    )
    resumed = run(tmp_path, "resumed", "float32", 3, "--resume", ckpt, "--threads", threads)
    assert_same(straight, resumed)


def data(rng):
    X = rng.standard_normal((40, 3))
    return X, X @ np.array([[1.0], [-1.0], [2.0]])


def net_and_trainer(optim=None, neurons=6):
    net = NeuralNetwork([Dense(neurons, Tanh()), Dense(1, Linear())], MeanSquaredError(), seed=1)
    return net, Trainer(net, optim or SGDMomentum(0.05, momentum=0.9))


def test_save_best_only_writes_on_improvement(tmp_path, rng):
    X, y = data(rng)
    y_val = y + rng.standard_normal(y.shape) * 2
    _, trainer = net_and_trainer(SGD(0.3))
    ckpt = ModelCheckpoint(str(tmp_path / "best-{epoch}.safetensors"), save_best_only=True)
    history = trainer.fit(X, y, X, y_val, epochs=12, eval_every=1, batch_size=4, callbacks=[ckpt], verbose=0,
                          early_stopping=False)  # fmt: skip
    val = history.history["val_loss"]
    improvements = [i for i, v in enumerate(val) if v < min(val[:i], default=np.inf)]
    assert [p.split("best-")[1] for p in ckpt.saved] == [
        f"{i + 1}.safetensors" for i in improvements
    ]
    assert 0 < len(ckpt.saved) < 12


def test_checkpoint_is_a_loadable_model_file(tmp_path, rng):
    import scratchdl

    X, y = data(rng)
    net, trainer = net_and_trainer()
    trainer.fit(X, y, epochs=2, batch_size=8, verbose=0)
    trainer.save_checkpoint(str(tmp_path / "c.safetensors"))
    loaded = scratchdl.load(tmp_path / "c.safetensors")
    np.testing.assert_array_equal(loaded.predict(X), net.predict(X))


def test_resume_rejects_another_architecture_or_optimizer(tmp_path, rng):
    X, y = data(rng)
    _, trainer = net_and_trainer()
    trainer.fit(X, y, epochs=1, batch_size=8, verbose=0)
    path = str(tmp_path / "c.safetensors")
    trainer.save_checkpoint(path)
    _, other = net_and_trainer(neurons=7)
    with pytest.raises(
        ModelFormatError,
        match=r'layer 1 differs: the checkpoint has .*"neurons": 6.*this network .*"neurons": 7',
    ):
        other.fit(X, y, epochs=2, batch_size=8, verbose=0, resume_from=path)
    _, adam = net_and_trainer(Adam())
    with pytest.raises(ModelFormatError, match="saved by SGDMomentum, this optimizer is Adam"):
        adam.fit(X, y, epochs=2, batch_size=8, verbose=0, resume_from=path)
    _, plain = net_and_trainer()
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        plain.fit(X, y, epochs=2, verbose=0, resume_from=str(tmp_path / "none.safetensors"))


def test_model_file_is_not_a_checkpoint(tmp_path, rng):
    X, y = data(rng)
    net, trainer = net_and_trainer()
    trainer.fit(X, y, epochs=1, verbose=0)
    net.save(tmp_path / "m.safetensors")
    with pytest.raises(ModelFormatError, match="not a checkpoint"):
        net_and_trainer()[1].fit(
            X, y, epochs=2, verbose=0, resume_from=str(tmp_path / "m.safetensors")
        )


def test_resume_refuses_to_replan_a_decaying_schedule_and_extend_does_it_on_purpose(tmp_path, rng):
    X, y = data(rng)
    path = str(tmp_path / "c.safetensors")

    def trainer():
        net = NeuralNetwork([Dense(6, Tanh()), Dense(1, Linear())], MeanSquaredError(), seed=1)
        return Trainer(net, SGD(0.1, final_lr=0.01, decay_type="linear"))

    trainer().fit(X, y, epochs=2, batch_size=8, verbose=0, callbacks=[ModelCheckpoint(path)])
    with pytest.raises(
        ModelFormatError, match=r"planned over epochs=2; resuming with epochs=4 would re-plan"
    ):
        trainer().fit(X, y, epochs=4, batch_size=8, verbose=0, resume_from=path)
    with pytest.raises(
        ModelFormatError, match=r"has done 2 epochs, and this fit asks for epochs=1"
    ):
        trainer().fit(X, y, epochs=1, batch_size=8, verbose=0, resume_from=path)
    lrs = []

    class Record(Callback):
        def on_epoch_begin(self, epoch, logs):
            lrs.append((epoch, round(self.trainer.optim.lr, 6)))

    extended = trainer()
    history = extended.fit(X, y, epochs=3, batch_size=8, verbose=0, resume_from=path, extend=True,
                           callbacks=[Record()])  # fmt: skip
    assert history.epoch == [0, 1, 2, 3, 4] and lrs == [(2, 0.1), (3, 0.055), (4, 0.01)]
    again = trainer()
    again.fit(X, y, epochs=3, batch_size=8, verbose=0, resume_from=path, extend=True)
    for a, b in zip(extended.net.params(), again.net.params(), strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="extend=True continues a checkpoint"):
        trainer().fit(X, y, epochs=3, verbose=0, extend=True)
