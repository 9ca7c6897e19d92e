#!/usr/bin/env bash
# The browser of tests/integration/test_ui_browser.py: Debian's chromium, driven by Playwright
# for Python (the `test` extra) through its executable path. Never `playwright install` (it
# downloads a browser build from the internet). Idempotent; without CI set, a failure (no root,
# no apt-get, no network) only says so and the browser test skips; with CI set, it fails.
set -uo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1; then
  SUDO="sudo -n"
fi
if command -v apt-get >/dev/null 2>&1 \
   && $SUDO apt-get update -q >/dev/null \
   && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends chromium >/dev/null \
   && command -v chromium >/dev/null 2>&1; then
  echo "installed $(chromium --version 2>/dev/null | head -1)"
  exit 0
fi
if [ -n "${CI:-}" ]; then
  echo "install_browser.sh: could not install the Debian package chromium (apt-get install chromium); CI needs it" >&2
  exit 1
fi
echo "install_browser.sh: the Debian package chromium is not installed and could not be (apt-get install chromium);" \
     "tests/integration/test_ui_browser.py will skip" >&2
exit 0
