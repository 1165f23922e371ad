"""The chapter-3 results on the real Boston file: medians over 9 seeds (issue: foundation)."""

import importlib.util
import os
import statistics

import pytest

from tests.conftest import REPO, require_data

pytestmark = pytest.mark.slow


def load_example(name):
    spec = importlib.util.spec_from_file_location(name, REPO / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def results():
    data = require_data("boston", "boston.csv")
    os.environ.setdefault("SCRATCHDL_DATA", str(data))
    return load_example("ch03_boston").run(seeds=9)


@pytest.mark.parametrize("model", ["linear", "one hidden layer", "two hidden layers"])
def test_book_models_within_ten_percent_of_the_book(results, model):
    book = load_example("ch03_boston").BOOK[model]
    med_mae = statistics.median(v[0] for v in results[model])
    med_rmse = statistics.median(v[1] for v in results[model])
    assert med_mae <= book[0] * 1.10 and med_rmse <= book[1] * 1.10, (med_mae, med_rmse)
    assert med_mae >= book[0] * 0.7  # far better than the book would mean a leak, not skill


def test_modern_model_beats_the_books_deep_model(results):
    med_mae = statistics.median(v[0] for v in results["modern"])
    med_rmse = statistics.median(v[1] for v in results["modern"])
    assert med_mae <= 2.3 and med_rmse <= 3.5, (med_mae, med_rmse)
