# block-volume-dr: disaster recovery on the storage most users have. dr-full, with every volume a
# real ext4 filesystem (StorageClass ext4: a loop-mounted image per volume) that starts with
# lost+found: the apps are backed up, the namespace is deleted, the same YAML is applied again, and
# each fresh volume (holding only lost+found) is restored byte for byte before its app runs.
# e2e-stage: real cluster only: its volumes are ext4 filesystems made and mounted on the node
# e2e-timeout: 480

STORAGE_CLASS=ext4
# shellcheck source=dr-full.sh
source "$E2E_DIR/scenarios/dr-full.sh"

for pvc in $PVCS; do
  dir="$(pvc_host_path "$pvc" shop)"
  assert_eq ext4 "$(findmnt -n -o FSTYPE --target "$dir")" "$pvc is an ext4 filesystem"
  [ -d "$dir/lost+found" ] || fail "$pvc: the filesystem's lost+found is gone"
done
restic_cli ls latest --host shop-web-data >"$SCENARIO_DIR/ls.txt"
! grep -q 'lost+found' "$SCENARIO_DIR/ls.txt" || fail "lost+found was backed up as data"
