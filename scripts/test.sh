#!/usr/bin/env bash
# Sets up .venv (Python 3.11, CPU-only torch and jax) and runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
# The CPU build: a bare `pip install torch` would pull gigabytes of CUDA packages.
# torchvision pinned to the release built against that torch: timm needs torchvision, and an
# unpinned one pulls a newer, CUDA torch. (Its compiled operators do not load against the CPU
# torch; tests/pretrained/conftest.py registers the two that importing timm touches.)
python -m pip install -q "torch==2.13.0" "torchvision==0.28.0"
# onnx: tests/export/test_onnx.py exports through tf2onnx / torch.onnx and runs onnxruntime.
python -m pip install -q -e ".[test,jax,parity,onnx]"
bash tests/run.sh
