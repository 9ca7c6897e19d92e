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
# langchain-elasticsearch 1.0 pins the 8.x Elasticsearch client, which the other tests replace with 9.x;
# its code runs on 9.x (tests/integration/test_elastic_vectors.py), so it goes in without its pins.
.venv/bin/python -m pip install -q --no-deps "langchain-elasticsearch==1.0.0" 2>&1 | grep -v "is ignored" || true
.venv/bin/python -c "import ray, rocksdict, pymongo, Stemmer, zstandard, raysearch" # fail loudly if anything is missing
