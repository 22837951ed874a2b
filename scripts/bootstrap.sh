#!/usr/bin/env bash
# Shared by the two README commands: make .venv with the locked dependencies.
# Needs Python 3.11 (python3 on PATH) and network access to PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v uv >/dev/null 2>&1 && [ ! -x .venv-tools/bin/uv ]; then
    python3 -m venv .venv-tools
    .venv-tools/bin/pip install --quiet 'uv==0.13.9'
fi
UV="$(command -v uv || echo .venv-tools/bin/uv)"
"$UV" sync --locked --python python3 "$@"
