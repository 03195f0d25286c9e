#!/usr/bin/env bash
# install-tools.sh PACKAGE...: installs the Debian packages among PACKAGE that are missing (as root,
# or through sudo), and moto's S3 server when it is missing. Shared by .ci/run (everything the tests
# need) and e2e/demo.sh (what the quick start needs), so a fresh machine runs either.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo -E "$@"; else
    echo "install-tools: installing $* needs root (or sudo)" >&2
    return 1
  fi
}
missing=()
for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-tools: installing ${missing[*]}" >&2
  as_root apt-get update -qq
  as_root apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if ! command -v moto_server >/dev/null; then
  echo "install-tools: installing moto[server] (pip)" >&2
  pip install --quiet 'moto[server]' 2>/dev/null || pip install --quiet --break-system-packages 'moto[server]'
fi
