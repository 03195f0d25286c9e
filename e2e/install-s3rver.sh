#!/usr/bin/env bash
# Installs s3rver 3.7.1 (npm), an S3 server that keeps its data on disk and speaks HTTPS with a
# certificate of our own: the storage a self-hosted user fronts with a private CA. Used by the
# restic-options scenario (moto, the other scenarios' server, speaks plain HTTP only). Prints the
# path of its command.
set -euo pipefail
VERSION="3.7.1"
DIR="${DATARESTOR_E2E_CACHE:-/var/cache/datarestor-e2e}/s3rver-$VERSION"
BIN="$DIR/node_modules/.bin/s3rver"
if [ ! -x "$BIN" ]; then
  command -v npm >/dev/null || { echo "s3rver: npm is required" >&2; exit 2; }
  mkdir -p "$DIR"
  (cd "$DIR" && npm install --silent --no-audit --no-fund --no-save "s3rver@$VERSION" >/dev/null)
fi
[ "$("$BIN" --version)" = "$VERSION" ] || { echo "s3rver: $BIN is not version $VERSION" >&2; exit 1; }
echo "$BIN"
