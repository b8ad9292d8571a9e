#!/usr/bin/env bash
# Vendor Swagger UI for /docs from npm at a pinned version, with its licence, into
# api/static/swagger-ui/ (served by the API itself: no CDN, works without internet).
# Re-run after changing VERSION; `npm pack` checks the tarball against the registry's integrity.
set -euo pipefail
VERSION=5.35.0
here="$(cd "$(dirname "$0")/.." && pwd)"
dest="$here/api/static/swagger-ui"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "swagger-ui-dist@$VERSION" >/dev/null)
tar -xzf "$work/swagger-ui-dist-$VERSION.tgz" -C "$work"
rm -rf "$dest"
mkdir -p "$dest"
for f in swagger-ui-bundle.js swagger-ui.css favicon-32x32.png LICENSE NOTICE; do
  if [ -f "$work/package/$f" ]; then cp "$work/package/$f" "$dest/"; fi
done
echo "swagger-ui-dist $VERSION" > "$dest/VERSION"
echo "vendored swagger-ui-dist $VERSION into ${dest#$here/}"
