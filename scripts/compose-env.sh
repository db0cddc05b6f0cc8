#!/usr/bin/env bash
# Writes .env for the Docker Compose stack: .env.example with every password replaced by a
# fresh random one.
#
# Why: the Compose stack runs with LEDGERGUARD_ENVIRONMENT=production, which refuses the
# development passwords .env.example ships (and any secret under 12 characters), so a copied
# .env.example stops at provisioning. Refuses to overwrite an existing .env (the local demo's,
# with development passwords, or one holding real secrets): move it away first.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -e .env ]; then
    echo "compose-env: .env exists; move it away (or set its passwords by hand) first" >&2
    exit 1
fi
umask 077
python3 - <<'PY'
import re
import secrets

text = open(".env.example", encoding="utf-8").read()
# NAME_PASSWORD=... and AIRFLOW_DB_PASS=...: 32 URL-safe characters, nothing a shell or
# Compose would interpolate
fresh = re.sub(
    r"^([A-Z0-9_]*(?:PASSWORD|_PASS))=.*$",
    lambda match: f"{match.group(1)}={secrets.token_urlsafe(24)}",
    text,
    flags=re.MULTILINE,
)
with open(".env", "x", encoding="utf-8") as out:
    out.write(fresh)
PY
echo "compose-env: wrote .env with fresh random passwords (keep it secret; it is git-ignored)"
