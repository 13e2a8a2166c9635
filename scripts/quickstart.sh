#!/usr/bin/env bash
# Sets up .venv and runs the main job: fine-tune a zoo model (SE-ResNet-18) on the embedded
# shapes dataset, offline, evaluate it on the held-out test split, and print the figures.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -m pip install -q -e '.[train]'
attention-zoo train quickstart --output runs/quickstart
attention-zoo evaluate runs/quickstart
