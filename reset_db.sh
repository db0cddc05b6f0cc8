#!/usr/bin/env bash
# For users of the original design: wipe and re-provision the whole local stack.
# Same as `make reset`: stops both servers, deletes their data, and starts a fresh provisioned,
# migrated, replicating cluster through the `ledgerguard` CLI.
set -euo pipefail
cd "$(dirname "$0")"
./scripts/setup.sh
[ -f .env ] || cp .env.example .env
exec .venv/bin/ledgerguard cluster reset --yes "$@"
