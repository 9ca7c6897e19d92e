#!/usr/bin/env bash
# Set up and run the whole test suite (unit, integration, end-to-end).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/install_browser.sh  # Debian's chromium, for the search page's browser test (skipped without it)
export RAY_AUTH_MODE=disabled
exec .venv/bin/python -m pytest tests --durations=15 "$@"
