#!/usr/bin/env bash
# Copies the web app's browser assets from the npm registry into the package's static files.
#
# Decision: the copied files are COMMITTED (src/ledgerguard/web/static/vendor/), so an install
# (pip, `make setup`, a wheel, CI) needs neither node nor the npm registry, and the served
# JavaScript is exactly what was reviewed. This script is how they are (re)made: versions are
# pinned in package.json / package-lock.json; bump them there, run this, commit the result.
# tests/unit/test_web_assets.py checks the committed copies against the lock file.
set -euo pipefail
cd "$(dirname "$0")/.."

npm ci --ignore-scripts --no-audit --no-fund >/dev/null
vendor=src/ledgerguard/web/static/vendor
rm -rf "$vendor"
mkdir -p "$vendor"/{htmx,chartjs,swagger-ui,redoc}
cp node_modules/htmx.org/dist/htmx.min.js node_modules/htmx.org/LICENSE "$vendor/htmx/"
cp node_modules/chart.js/dist/chart.umd.min.js node_modules/chart.js/LICENSE.md "$vendor/chartjs/"
cp node_modules/swagger-ui-dist/{swagger-ui-bundle.js,swagger-ui.css,LICENSE,NOTICE} \
  "$vendor/swagger-ui/"
cp node_modules/redoc/bundles/redoc.standalone.js node_modules/redoc/LICENSE "$vendor/redoc/"
# the version of each copy, read by the test against package-lock.json
node -e '
  const lock = require("./package-lock.json").packages;
  const names = ["htmx.org", "chart.js", "swagger-ui-dist", "redoc"];
  const out = Object.fromEntries(names.map((n) => [n, lock["node_modules/" + n].version]));
  process.stdout.write(JSON.stringify(out, null, 2) + "\n");
' >"$vendor/versions.json"
echo "vendored into $vendor:"
cat "$vendor/versions.json"
