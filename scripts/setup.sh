#!/usr/bin/env bash
# Installs what LedgerGuard needs on a Debian 12 machine, idempotently:
#   - Debian packages (MariaDB server/client core, ...), only those missing;
#   - .venv with the package and its extras (EXTRAS, default "dev"; the Makefile asks for
#     "dev,airflow,ml"), re-installed when
#     pyproject.toml changes.
# Used by `make setup`, `make demo`, `make test` and .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  mariadb-server-core mariadb-client-core   # the two local database servers
  mariadb-backup mariadb-client zstd        # backups: mariadb-backup, mariadb-binlog, compression
  prometheus prometheus-mysqld-exporter     # local monitoring (promtool comes with prometheus)
  sysbench wrk                              # the benchmark's DB ceiling and a C HTTP client
  docker-compose                            # only to validate deploy/docker-compose.yml
  chromium                                  # the web app's browser tests (Playwright drives it)
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
  .venv/bin/pip install -q --upgrade pip 2>&1 | { grep -v "^WARNING: Location '" || true; }
fi
stamp=".venv/.ledgerguard-installed-${EXTRAS//,/-}"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing ledgerguard[${EXTRAS}] into .venv"
  # (this machine's pip configuration names local index folders that may be absent; its
  # "Location ... is ignored" warnings are noise, everything else is shown)
  .venv/bin/pip install -q -e ".[${EXTRAS}]" 2>&1 | { grep -v "^WARNING: Location '" || true; }
  touch "$stamp"
fi
