"""The `scratchdl` command end to end, in subprocesses."""

import os
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import require_data

pytest.importorskip("sklearn")


def run(*args, cwd, env_extra=None):
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "scratchdl", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo")
    result = run("demo", "--epochs", "10", cwd=folder)
    return folder, result


def test_demo_trains_and_writes_its_files(demo):
    folder, result = demo
    assert result.returncode == 0, result.stderr
    assert "test loss" in result.stdout and "accuracy" in result.stdout
    accuracy = float(result.stdout.split("accuracy ")[1].split("%")[0])
    assert accuracy > 90  # measured 97.2% for these 10 epochs
    for name in ("digits.safetensors", "digits-history.json"):
        assert (folder / "scratchdl-out" / name).is_file()
        assert f"scratchdl-out/{name}" in result.stdout
    if pytest.importorskip("matplotlib"):
        assert (folder / "scratchdl-out" / "digits-curve.png").stat().st_size > 10_000


def test_evaluate_and_predict_a_saved_model(demo):
    folder, _ = demo
    model = folder / "scratchdl-out" / "digits.safetensors"
    result = run("evaluate", str(model), "--data", "digits", cwd=folder)
    assert result.returncode == 0, result.stderr
    assert "on the digits test set (359 examples)" in result.stdout
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    np.save(folder / "batch.npy", X[:20])
    result = run("predict", str(model), "batch.npy", "--out", "pred.npy", cwd=folder)
    assert result.returncode == 0, result.stderr
    predictions = np.load(folder / "pred.npy")
    assert predictions.shape == (20,) and np.mean(predictions == y[:20]) >= 0.9
    np.save(folder / "one.npy", X[3])
    result = run("predict", str(model), "one.npy", cwd=folder)
    assert result.stdout.startswith("0: class ")


def test_train_a_preset_for_one_epoch(tmp_path):
    base = require_data("boston", "boston.csv")
    result = run("train", "boston-mlp", "--epochs", "1", "--out", "out", cwd=tmp_path,
                 env_extra={"SCRATCHDL_DATA": str(base)})  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "boston-mlp.safetensors").is_file()
    result = run("evaluate", "out/boston-mlp.safetensors", "--data", "boston", cwd=tmp_path,
                 env_extra={"SCRATCHDL_DATA": str(base)})  # fmt: skip
    assert result.returncode == 0 and "mae" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["train", "no-such-preset"],
            "unknown preset 'no-such-preset'; choose one of: boston-linear",
        ),
        (["train", "digits", "--epochs", "-3"], "--epochs must be a positive integer, received -3"),
        (["train", "digits", "--threads", "0"], "--threads must be a positive integer, received 0"),
        (
            ["train", "digits", "--data-dir", "/no/such/folder"],
            "--data-dir /no/such/folder is not a folder",
        ),
        (
            ["evaluate", "missing.safetensors", "--data", "digits"],
            "model file missing.safetensors does not exist",
        ),
        (
            ["evaluate", "corrupt.safetensors", "--data", "digits"],
            "corrupt.safetensors: header length",
        ),
        (["predict", "corrupt.safetensors", "x.npy"], "corrupt.safetensors"),
        (["train", "mnist-mlp", "--data-dir", "empty"], "mnist file train-images-idx3-ubyte.gz"),
        (["train"], "the following arguments are required: preset"),
        (
            ["train", "digits", "--resume", "nope.safetensors"],
            "--resume nope.safetensors: no such checkpoint file",
        ),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path, args, message):
    (tmp_path / "corrupt.safetensors").write_bytes(b"this is not a model file at all")
    (tmp_path / "empty").mkdir()
    env = {"SCRATCHDL_DATA": str(tmp_path / "nodata"), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    result = run(*args, cwd=tmp_path, env_extra=env | {"SCRATCHDL_OFFLINE": "1"})
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert message in lines[0]
    assert "Traceback" not in result.stderr


def test_debug_shows_the_traceback(tmp_path):
    result = run("train", "digits", "--epochs", "0", "--debug", cwd=tmp_path)
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_train_resume_gives_the_same_model(tmp_path):
    run("train", "digits", "--epochs", "2", "--out", "a", "--verbose", "0", cwd=tmp_path)
    resumed = run("train", "digits", "--epochs", "4", "--out", "a", "--verbose", "0",
                  "--resume", "a/digits-checkpoint.safetensors", cwd=tmp_path)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    straight = run("train", "digits", "--epochs", "4", "--out", "b", "--verbose", "0", cwd=tmp_path)
    assert straight.returncode == 0, straight.stderr
    assert (tmp_path / "a" / "digits.safetensors").read_bytes() == (
        tmp_path / "b" / "digits.safetensors"
    ).read_bytes()


def test_info_says_when_the_environment_pins_openblas_kernels(tmp_path):
    pinned = run("info", cwd=tmp_path, env_extra={"OPENBLAS_CORETYPE": "Haswell"})
    assert pinned.returncode == 0, pinned.stderr
    assert "the environment sets OPENBLAS_CORETYPE=Haswell" in pinned.stdout
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENBLAS_")}
    free = subprocess.run([sys.executable, "-m", "scratchdl", "info"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert free.returncode == 0, free.stderr
    assert "the environment sets" not in free.stdout


def test_info_says_whether_the_compiled_kernels_run(tmp_path):
    off = run("info", cwd=tmp_path, env_extra={"SCRATCHDL_FAST": "0"})
    assert "compiled kernels (scratchdl[fast]): off (SCRATCHDL_FAST=0)" in off.stdout
    on = run("info", cwd=tmp_path, env_extra={"SCRATCHDL_FAST": "1"})
    try:
        import numba  # noqa: F401
    except ImportError:
        assert "off (numba is not installed)" in on.stdout
    else:
        assert "compiled kernels (scratchdl[fast]): on, numba" in on.stdout


def test_train_splits_batches_over_threads(tmp_path):
    result = run("train", "digits", "--epochs", "2", "--threads", "2", "--out", "t", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "t" / "digits.safetensors").is_file()
    accuracy = float(result.stdout.split("accuracy ")[1].split("%")[0])
    assert accuracy > 80
