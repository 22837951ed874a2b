#!/usr/bin/env bash
# README command 1: install, build the simulated city into the embedded database, run the
# early-warning detection and serve the web UI (address and demo logins are printed).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh --no-dev
exec .venv/bin/yifang demo "$@"
