#!/usr/bin/env bash
# Runs the whole suite: everything on TensorFlow (the full model matrix, two workers), then
# the tests marked every_backend on JAX and on PyTorch, each backend in its own process.
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
run tensorflow tests -n 2 -q -p no:cacheprovider
run jax tests -m every_backend -q -p no:cacheprovider
run torch tests -m every_backend -q -p no:cacheprovider
printf '%s\n' "${summary[@]}"
exit $status
