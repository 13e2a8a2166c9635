#!/usr/bin/env bash
# Runs the whole suite: everything on TensorFlow (the full model matrix, two workers; the
# parity tests against timm and the official code in a pass of their own), then the tests
# marked every_backend on JAX and on PyTorch, each backend in its own process. Every pass but
# the parity one runs on two workers: most of the JAX pass is single-threaded XLA compilation.
# The TF pass distributes by group: the tests that share a built model
# (tests/helpers.py: shares_registered_model) run together on one worker.
set -uo pipefail
cd "$(dirname "$0")/.."
status=0
summary=()
run() {
  local backend=$1; shift
  echo "=== KERAS_BACKEND=$backend pytest $*"
  KERAS_BACKEND=$backend python -m pytest "$@"
  local code=$?
  summary+=("$backend: exit $code")
  [ $code -eq 0 ] || status=1
}
run tensorflow tests -m "not parity" -n 2 --dist loadgroup -q -p no:cacheprovider --durations=15
# Parity with timm and the official CBAM/BAM code: its own pass, as it imports torch next to TF.
run tensorflow tests -m parity -q -p no:cacheprovider
# Most of the JAX pass is XLA compiling small programs (one per initialiser shape, one per test
# model) that then run once on tiny inputs: without LLVM's optimisation passes the Attention U-Net
# tests took 95 s instead of 176 s. Only this pass: recipes and benchmarks keep XLA's default.
XLA_FLAGS="${XLA_FLAGS:-} --xla_backend_optimization_level=0" \
  run jax tests -m every_backend -n 2 -q -p no:cacheprovider --durations=10
run torch tests -m every_backend -n 2 -q -p no:cacheprovider --durations=10
printf '%s\n' "${summary[@]}"
exit $status
