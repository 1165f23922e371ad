"""Data-parallel training over MPI (issue 13): N ranks end with the one-process model;
failures and disagreements end every rank, quickly. Each run is `mpiexec` in a subprocess
with a timeout; pytest itself never runs under MPI."""

import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO

pytest.importorskip("mpi4py")
MPIEXEC = shutil.which("mpiexec", path=str(Path(sys.executable).parent)) or shutil.which("mpiexec")
pytestmark = pytest.mark.skipif(MPIEXEC is None, reason="no mpiexec (pip install 'scratchdl[mpi]')")
SCRIPT = REPO / "tests" / "distributed_run.py"


def run(tmp_path, name, model, ranks=None, *args):
    out = tmp_path / f"{name}.npz"
    command = [sys.executable, str(SCRIPT), str(out), model, *map(str, args)]
    if ranks is not None:
        command = [MPIEXEC, "-n", str(ranks), *command]
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    return result, out, time.perf_counter() - start


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("plain")
    outs = {}
    for model in ("dense", "conv"):
        result, out, _ = run(tmp, model, model, None, "--plain")
        assert result.returncode == 0, result.stderr
        outs[model] = np.load(out)
    return outs


@pytest.mark.parametrize("ranks", [1, 2, 3])
@pytest.mark.parametrize("model", ["dense", "conv"])
def test_n_ranks_end_with_the_one_process_model(tmp_path, plain, model, ranks):
    result, out, _ = run(tmp_path, "dist", model, ranks)
    assert result.returncode == 0, result.stderr
    got, expected = np.load(out), plain[model]
    assert got.files == expected.files
    for key in expected.files:  # parameters, training losses, validation losses
        np.testing.assert_allclose(got[key], expected[key], rtol=0, atol=1e-12, err_msg=key)


@pytest.mark.parametrize("model", ["dense", "conv"])
def test_ranks_that_split_their_part_over_threads_end_with_the_one_process_model(
    tmp_path, plain, model
):
    result, out, _ = run(tmp_path, "dist", model, 2, "--threads", 2)
    assert result.returncode == 0, result.stderr
    got, expected = np.load(out), plain[model]
    for key in expected.files:
        np.testing.assert_allclose(got[key], expected[key], rtol=0, atol=1e-12, err_msg=key)


def test_a_rank_failing_in_a_step_ends_every_rank_with_an_error(tmp_path):
    result, _, seconds = run(tmp_path, "fail", "dense", 3, "--fail-rank", 1)
    assert result.returncode != 0 and seconds < 60
    assert "rank 1 failed in a training step: RuntimeError: injected failure" in result.stderr
    assert result.stderr.count("stops because another rank failed") == 2


def test_a_rank_failing_outside_a_step_aborts_the_job_instead_of_hanging(tmp_path):
    result, _, seconds = run(tmp_path, "fail", "dense", 2, "--fail-callback-rank", 1)
    assert result.returncode != 0 and seconds < 60
    assert "injected callback failure" in result.stderr and "aborting all ranks" in result.stderr


@pytest.mark.parametrize(
    ("option", "what"),
    [("--other-seed-on-rank", "settings"), ("--other-data-on-rank", "data")],
)
def test_ranks_that_disagree_get_a_clear_error_on_every_rank(tmp_path, option, what):
    result, _, _ = run(tmp_path, "disagree", "dense", 3, option, 2)
    assert result.returncode != 0
    assert result.stderr.count(f"the ranks disagree on {what}: rank 0 has") == 3


def test_each_rank_takes_its_share_of_a_batch():
    from scratchdl.distributed import DataParallel

    class Fake:
        def __init__(self, rank, size):
            self.rank, self.size = rank, size

    for n, size in ((16, 3), (2, 3), (7, 2)):
        parts = []
        for rank in range(size):
            dp = DataParallel.__new__(DataParallel)
            dp.comm, dp.rank, dp.size = Fake(rank, size), rank, size
            parts.append(dp.part(n))
        covered = [i for p in parts for i in range(p.start, p.stop)]
        assert covered == list(range(n))
        assert max(p.stop - p.start for p in parts) - min(p.stop - p.start for p in parts) <= 1


def test_ranks_with_batch_norm_hold_one_model_and_only_rank_0_logs(tmp_path):
    log = tmp_path / "log.csv"
    result, out, _ = run(tmp_path, "bn", "bn", 2, "--every-rank", "--csv", log)
    assert result.returncode == 0, result.stderr
    ranks = [np.load(f"{out}.{r}.npz") for r in (0, 1)]
    assert (
        len(ranks[0].files) == 8
    )  # conv (2), batch norm (2 + running mean and variance), dense (2)
    for key in ranks[0].files:  # per-rank batch statistics, averaged: the same model
        np.testing.assert_array_equal(ranks[0][key], ranks[1][key], err_msg=key)
    assert ranks[0]["arr_4"].std() > 0  # the running mean moved
    # averaged, not summed: the running statistics stay near one process's
    result, single, _ = run(tmp_path, "bn1", "bn", None, "--plain", "--every-rank")
    assert result.returncode == 0, result.stderr
    one = np.load(f"{single}.0.npz")
    np.testing.assert_allclose(ranks[0]["arr_5"], one["arr_5"], rtol=0.25)  # running variance
    assert log.read_text().count("\n") == 4  # a header and three epochs, written once
