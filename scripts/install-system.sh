#!/usr/bin/env bash
# System services the tests need: a PostgreSQL server (the ledger's team backend) and Chromium (report checks).
# Installs from Debian's packages only when missing; the tests start and stop their own PostgreSQL instance.
set -euo pipefail
need=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)  # the gateway's fleet tests start their own
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing system packages: ${need[*]} (run as root, or: sudo apt-get install ${need[*]})" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
echo "system packages ready: postgresql $(ls /usr/lib/postgresql/ | tail -1), $(chromium --version 2>/dev/null || echo 'chromium missing')"
