#!/usr/bin/env bash
# The Python package as a user installs it: `pip install .` of this checkout (maturin from
# PyPI builds the extension in release, on the dependencies `cargo test --release --workspace`
# compiled) into a fresh virtual environment, then its tests (python/tests), which check its
# numbers against the `ladder` binary of the same build (target/release/ladder).
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=target/python-ci
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check ".[test]"
"$venv/bin/python" -m pytest -q python/tests
