#!/usr/bin/env bash
# A Python virtual environment with the gRPC tools that examples/python needs, in
# target/python-env (made once, remade when examples/python/requirements.txt changes). Prints
# the environment's python on its last line. Needs python3 with venv and PyPI (pip).
# Usage: bash scripts/python-env.sh
set -euo pipefail
cd "$(dirname "$0")/.."
env_dir=target/python-env
requirements=examples/python/requirements.txt
stamp="$env_dir/requirements.installed"
if ! cmp -s "$requirements" "$stamp" 2>/dev/null; then
  rm -rf "$env_dir"
  mkdir -p target
  python3 -m venv "$env_dir"
  "$env_dir/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
  cp "$requirements" "$stamp"
fi
echo "$PWD/$env_dir/bin/python"
