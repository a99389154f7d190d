#!/bin/sh
# step: install and enable the systemd units
# Enables every unit that has an [Install] section (the worker and its env unit; the failure
# reporter is started by OnFailure= only). Works whether or not systemd runs: on a builder it
# does; in a chroot, systemctl enables offline, and symlinks made by hand are the last resort.
set -eu
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH
umask 022
: "${KILN_BUNDLE_DIR:?KILN_BUNDLE_DIR is not set (the provision step passes it)}"

unit_dir=/etc/systemd/system
installable=""
for unit in "$KILN_BUNDLE_DIR"/systemd/*.service; do
  [ -f "$unit" ] || { echo "no units in $KILN_BUNDLE_DIR/systemd" >&2; exit 1; }
  name=$(basename "$unit")
  install -m 0644 -o root -g root "$unit" "$unit_dir/$name"
  echo "installed $unit_dir/$name"
  if grep -q '^WantedBy=' "$unit"; then installable="$installable $name"; fi
done
[ -n "$installable" ] || { echo "no unit has an [Install] section" >&2; exit 1; }

enable_by_hand() {
  for name in $installable; do
    # shellcheck disable=SC2013 # WantedBy= lists targets separated by spaces: words, not lines
    for target in $(sed -n 's/^WantedBy=//p' "$unit_dir/$name"); do
      mkdir -p "$unit_dir/$target.wants"
      ln -sfn "$unit_dir/$name" "$unit_dir/$target.wants/$name"
      echo "linked $unit_dir/$target.wants/$name"
    done
  done
}

# shellcheck disable=SC2086 # installable is a list of unit names
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  systemctl enable $installable 2>&1
elif systemctl --root=/ enable $installable 2>&1; then
  echo "systemd is not running here: enabled offline"
else
  echo "systemctl could not enable offline: linking by hand"
  enable_by_hand
fi
