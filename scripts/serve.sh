#!/usr/bin/env bash
# Set up and start the service locally with its embedded defaults:
# local Ray, RocksDB shards and a local MongoDB server under ~/.raysearch,
# HTTP on 127.0.0.1:8000. Extra arguments go to `raysearch serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/raysearch serve "$@"
