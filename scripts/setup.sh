#!/usr/bin/env bash
# Create .venv and install raysearch with its test dependencies (idempotent).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
.venv/bin/python -m pip install -q -e ".[test]" 2>&1 | grep -v "is ignored" || true
.venv/bin/python -c "import ray, rocksdict, pymongo, Stemmer, zstandard, raysearch" # fail loudly if anything is missing
