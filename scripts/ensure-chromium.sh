#!/usr/bin/env bash
# The report test opens a real report in headless Chromium; installs the Debian packages when it can.
# Without them that one test is skipped and says why; everything else runs.
set -uo pipefail
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then exit 0; fi
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "headless Chromium not found: installing the Debian packages chromium and chromium-driver" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null \
        && exit 0
fi
echo "note: chromium and chromium-driver are not installed; the test that renders a report in a browser is skipped" >&2
