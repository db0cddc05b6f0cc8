#!/usr/bin/env bash
# Installs what LedgerGuard needs on a Debian 12 machine, idempotently:
#   - Debian packages (MariaDB server/client core, ...), only those missing;
#   - .venv with the package and its extras (EXTRAS, default "dev"), re-installed when
#     pyproject.toml changes.
# Used by `make setup`, `make demo`, `make test` and .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  mariadb-server-core mariadb-client-core   # the two local database servers
  prometheus prometheus-mysqld-exporter     # local monitoring (promtool comes with prometheus)
  docker-compose                            # only to validate deploy/docker-compose.yml
)
EXTRAS="${EXTRAS:-dev}"
PYTHON="${PYTHON:-python3}"

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done
if ((${#missing[@]})); then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  echo "setup: installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian starts its own Prometheus/exporter services on 9090/9104; ours are started by
  # `ledgerguard monitoring up` on the configured ports, so the system copies stay off.
  $sudo systemctl disable --now prometheus.service prometheus-mysqld-exporter.service \
    >/dev/null 2>&1 || true
fi

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "setup: Python 3.11 or newer is needed (found $("$PYTHON" --version 2>&1)); set PYTHON=..." >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PYTHON" -m venv .venv
  .venv/bin/pip install -q --upgrade pip
fi
stamp=".venv/.ledgerguard-installed-${EXTRAS//,/-}"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing ledgerguard[${EXTRAS}] into .venv"
  .venv/bin/pip install -q -e ".[${EXTRAS}]"
  touch "$stamp"
fi
