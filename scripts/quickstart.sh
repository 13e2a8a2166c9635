#!/usr/bin/env bash
# Sets up .venv and runs the main job, offline: train the ST-CNN on the embedded cluttered
# digits (recipes/quickstart.toml), evaluate it on the held-out test split, export it to TFLite
# (verified in LiteRT), draw runs/quickstart/attention.png, and print the figures.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -m pip install -q -e '.[train,viz,litert]'
attention-zoo train quickstart --output runs/quickstart
attention-zoo evaluate runs/quickstart
