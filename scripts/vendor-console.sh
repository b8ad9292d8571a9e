#!/usr/bin/env bash
# Fetch the web console's scripts from pinned npm packages into api/console/static/vendor/,
# each with its licence file. The result is committed, so CI and users need no npm.
# Re-run after changing a version below: ./scripts/vendor-console.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=api/console/static/vendor
# package@version  file-in-package  licence-file-in-package
PACKAGES=(
  "cytoscape@3.34.4 dist/cytoscape.min.js LICENSE"
  "dagre@0.8.5 dist/dagre.min.js LICENSE"
  "cytoscape-dagre@2.5.0 cytoscape-dagre.js LICENSE"
  "chart.js@4.6.1 dist/chart.umd.min.js LICENSE.md"
)
command -v npm >/dev/null || { echo "npm is needed to refresh the vendored files" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rm -rf "$DEST"
mkdir -p "$DEST"
for entry in "${PACKAGES[@]}"; do
  read -r spec file licence <<<"$entry"
  name=${spec%@*}
  (cd "$work" && npm pack --silent "$spec" >/dev/null)
  tgz=$(ls "$work"/*.tgz)
  mkdir -p "$work/x"
  tar -xzf "$tgz" -C "$work/x"
  license=$(node -e "console.log(require('$work/x/package/package.json').license)")
  case "$license" in
    MIT|Apache-2.0|BSD-2-Clause|BSD-3-Clause|ISC) ;;
    *) echo "$spec has licence '$license', not MIT/Apache/BSD" >&2; exit 1 ;;
  esac
  mkdir -p "$DEST/$name"
  cp "$work/x/package/$file" "$DEST/$name/"
  cp "$work/x/package/$licence" "$DEST/$name/LICENSE"
  echo "$spec $license $(basename "$file") sha256:$(sha256sum "$DEST/$name/$(basename "$file")" | cut -c1-64)" \
    >>"$DEST/VERSIONS"
  rm -rf "$work/x" "$tgz"
done
# dagre's bundle includes graphlib and lodash (both MIT); their notices travel with it.
cat >"$DEST/dagre/NOTICE" <<'NOTE'
dist/dagre.min.js bundles graphlib (MIT, Chris Pettitt) and lodash (MIT, JS Foundation and
other contributors, https://lodash.com/license); see their packages for the full texts.
NOTE
cat "$DEST/VERSIONS"
