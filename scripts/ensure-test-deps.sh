#!/bin/sh
# The tests run a real redis-server and a real headless Chromium (Debian packages) on
# loopback. Install what is missing when this machine allows it; otherwise say so clearly.
missing=""
command -v redis-server >/dev/null 2>&1 || missing="$missing redis-server"
[ -x /usr/bin/chromium ] || missing="$missing chromium"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing$missing for the tests (Debian packages)..." >&2
  export DEBIAN_FRONTEND=noninteractive
  # shellcheck disable=SC2086
  if apt-get install -y -qq $missing >/dev/null 2>&1 || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq $missing >/dev/null 2>&1; }; then
    exit 0
  fi
fi
echo "warning:$missing not installed and could not be installed; the tests that need them will fail (apt-get install$missing)" >&2
exit 0
