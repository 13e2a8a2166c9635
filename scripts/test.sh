#!/usr/bin/env bash
# Sets up .venv (Python 3.11, CPU-only torch and jax) and runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
# The CPU build: a bare `pip install torch` would pull gigabytes of CUDA packages.
python -m pip install -q "torch==2.13.0"
python -m pip install -q -e ".[test,jax]"
bash tests/run.sh
