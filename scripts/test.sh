#!/usr/bin/env bash
# Set up .venv with the test dependencies, then run the linters, build the docs site
# (warnings are errors) and run the whole test suite.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k optim`.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-$(command -v python3 || command -v python)}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
.venv/bin/python -m ruff check .
.venv/bin/python -m ruff format --check .
# the docs site, from the docstrings; any warning fails the build
.venv/bin/python -m mkdocs build --strict --quiet --site-dir "$(mktemp -d)"
.venv/bin/python -m pytest "$@"
