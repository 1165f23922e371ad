"""The chapter notebooks run from top to bottom (issue 16), on slices of the shared data.

Executed with nbclient in a fresh kernel each, from a scratch folder; stored without
outputs (a test checks that too). ``SCRATCHDL_FULL=1`` makes them use the whole data sets.
"""

import json
import os

import pytest

from tests.conftest import REPO, require_data

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
NEEDS = {
    "ch2": ("boston", "boston.csv"),
    "ch3": ("boston", "boston.csv"),
    "ch4": ("mnist", "train-images-idx3-ubyte.gz"),
    "ch5": ("mnist", "train-images-idx3-ubyte.gz"),
    "ch6": ("text", "tinyshakespeare.txt"),
}


def test_there_is_a_notebook_per_chapter():
    assert [p.name[:3] for p in NOTEBOOKS] == ["ch1", "ch2", "ch3", "ch4", "ch5", "ch6"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebooks_are_stored_without_outputs(path):
    cells = json.loads(path.read_text())["cells"]
    assert all(
        not c.get("outputs") and c.get("execution_count") is None
        for c in cells
        if c["cell_type"] == "code"
    )


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path, tmp_path, monkeypatch):
    needs = NEEDS.get(path.name[:3])
    if needs:
        data = require_data(*needs)
        monkeypatch.setenv("SCRATCHDL_DATA", str(data))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    notebook = nbformat.read(str(path), as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})  # fmt: skip
    client.execute()
    errors = [
        o for c in notebook.cells for o in c.get("outputs", []) if o.get("output_type") == "error"
    ]
    assert not errors, errors
    assert os.environ.get("SCRATCHDL_OFFLINE") == "1"  # no notebook downloads anything
