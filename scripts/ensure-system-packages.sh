#!/usr/bin/env bash
# Install the Debian packages the test suite needs, only when they are missing.
#   prometheus        the real server and promtool that the collector tests backfill and query (required)
#   victoria-metrics  the same collector tests against VictoriaMetrics (optional: skipped if it cannot install)
#   chromium, chromium-driver  headless Chromium (+ WebDriver) for the report's rendering test and the dashboard's browser test (required)
set -euo pipefail
need=()
optional=()
{ command -v promtool && command -v prometheus; } >/dev/null 2>&1 || need+=(prometheus)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
command -v victoria-metrics >/dev/null 2>&1 || optional+=(victoria-metrics)
if [ ${#need[@]} -eq 0 ] && [ ${#optional[@]} -eq 0 ]; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null 2>&1; then
    [ ${#need[@]} -eq 0 ] && exit 0
    echo "error: need root (or sudo) to install ${need[*]}." >&2
    exit 1
  fi
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
echo "Installing Debian packages: ${need[*]} ${optional[*]}"
$SUDO apt-get update -qq
if [ ${#need[@]} -gt 0 ]; then
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if [ ${#optional[@]} -gt 0 ]; then
  $SUDO apt-get install -y -qq --no-install-recommends "${optional[@]}" >/dev/null 2>&1 \
    || echo "note: optional ${optional[*]} could not be installed; its tests will be skipped."
fi
