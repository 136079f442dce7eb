#!/bin/sh
# The Redis tests run a real redis-server (Debian package) on random loopback ports.
# Install it when it is missing and this machine allows it; otherwise say so clearly.
command -v redis-server >/dev/null 2>&1 && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing redis-server for the tests (Debian package)..." >&2
  export DEBIAN_FRONTEND=noninteractive
  if apt-get install -y -qq redis-server >/dev/null 2>&1 || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq redis-server >/dev/null 2>&1; }; then
    exit 0
  fi
fi
echo "warning: redis-server is not installed and could not be installed; the Redis tests will fail (apt-get install redis-server)" >&2
exit 0
