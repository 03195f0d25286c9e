#!/usr/bin/env bash
# Builds the test cluster's images from files on this machine (no registry can be reached) and loads
# them into its containerd:
#   images.sh base                      pause, busybox + sqlite3 (apps), PostgreSQL, restic (the Jobs' image)
#   images.sh operator BINARY TAG       the operator: BINARY + restic, non-root (UID 65532)
set -euo pipefail
source "$(dirname "$0")/env.sh"
out="$CLUSTER_DIR/images"
mkdir -p "$out"

load() { # NAME ARCHIVE
  ctr_k8s images import --no-unpack=false "$2" >/dev/null
  ctr_k8s images check "name==$1" | grep -q complete || { echo "images: $1 did not load" >&2; exit 1; }
}
build() { # NAME FILE ARGS...
  local name="$1" file="$out/$2"
  shift 2
  python3 "$CLUSTER_SCRIPTS/oci_image.py" --name "$name" --out "$file" "$@"
  load "$name" "$file"
}

case "${1:-}" in
  base)
    command -v busybox >/dev/null || { echo "images: busybox-static is not installed" >&2; exit 2; }
    build "$PAUSE_IMAGE" pause.tar --add "$K8S_BIN/pause:/pause" --entrypoint /pause --user 65535
    # The apps: busybox, and sqlite3 for the scenario whose apps write to live databases.
    command -v sqlite3 >/dev/null || { echo "images: sqlite3 is not installed" >&2; exit 2; }
    build "$APP_IMAGE" busybox.tar --with-libraries --busybox "$(command -v busybox)" --add "$(command -v sqlite3):/usr/bin/sqlite3" --cmd sh
    # PostgreSQL for the live-database scenario: Debian's server, run as the host's postgres user
    # (kube-sim runs the same command on the host, where that user owns the server's files).
    pg=/usr/lib/postgresql/$PG_MAJOR
    [ -x "$pg/bin/postgres" ] || { echo "images: postgresql-$PG_MAJOR is not installed" >&2; exit 2; }
    pg_files=()
    for tool in postgres initdb pg_ctl psql pg_dump pg_isready; do pg_files+=(--add "$pg/bin/$tool:$pg/bin/$tool"); done
    # The server's modules (initdb loads some); not the JIT (bitcode and LLVM: 100 MB).
    for module in "$pg"/lib/*.so; do
      [ "${module##*/}" = llvmjit.so ] || pg_files+=(--add "$module:$module")
    done
    build "$PG_IMAGE" postgres.tar --with-libraries --busybox "$(command -v busybox)" "${pg_files[@]}" \
      --add "$(command -v setpriv):/usr/bin/setpriv" \
      --add-tree "/usr/share/postgresql/$PG_MAJOR:/usr/share/postgresql/$PG_MAJOR" --add-tree /usr/share/zoneinfo:/usr/share/zoneinfo \
      --user-entry "postgres:$(id -u postgres):$(id -g postgres)" --cmd sh
    build "$RESTIC_IMAGE_REF" restic.tar --with-libraries --busybox "$(command -v busybox)" --add "$(command -v restic):/usr/bin/restic" \
      --entrypoint /usr/bin/restic
    ;;
  operator)
    binary="$2" tag="$3"
    build "$OPERATOR_IMAGE_REPO:$tag" operator.tar --with-libraries \
      --add "$binary:/usr/local/bin/datarestor-operator" --add "$(command -v restic):/usr/local/bin/restic" \
      --add /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt \
      --entrypoint /usr/local/bin/datarestor-operator --user 65532:65532
    ;;
  *) echo "usage: images.sh base | operator BINARY TAG" >&2; exit 2 ;;
esac
