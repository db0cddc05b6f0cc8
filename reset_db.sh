#!/usr/bin/env bash
# For users of the original design: wipe and re-provision the whole stack.
#
#   ./reset_db.sh            local stack: stops both MariaDB servers, deletes their data, and
#                            starts a fresh provisioned, migrated, replicating cluster
#                            (same as `make reset` / `ledgerguard cluster reset --yes`)
#   ./reset_db.sh --compose  Compose stack: `docker compose down -v` (volumes included), then
#                            `up -d --build`; the one-shot `provision` service provisions again
set -euo pipefail
cd "$(dirname "$0")"
[ -f .env ] || cp .env.example .env
if [ "${1:-}" = "--compose" ]; then
  shift
  if docker compose version >/dev/null 2>&1; then compose=(docker compose); else compose=(docker-compose); fi
  "${compose[@]}" -p ledgerguard -f deploy/docker-compose.yml --env-file .env down -v --remove-orphans
  exec "${compose[@]}" -p ledgerguard -f deploy/docker-compose.yml --env-file .env up -d --build "$@"
fi
./scripts/setup.sh
exec .venv/bin/ledgerguard cluster reset --yes "$@"
