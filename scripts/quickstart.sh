#!/usr/bin/env bash
# Sets up .venv and runs the main job. Until the training recipes land, the main job builds a
# zoo model, checks its figures against the paper's and lists the zoo.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -m pip install -q -e .
attention-zoo list
attention-zoo info cbam_resnet50 --build
