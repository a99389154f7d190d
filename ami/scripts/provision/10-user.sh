#!/bin/sh
# step: create the kiln-worker system user
# kiln-worker.service runs as this user (User=). A system account with no login and no home of its
# own: its only writable place is the state directory.
set -eu
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH
: "${KILN_USER:?KILN_USER is not set (the provision step passes it)}"
: "${KILN_STATE_DIR:?KILN_STATE_DIR is not set}"

if getent passwd "$KILN_USER" >/dev/null; then
  echo "user $KILN_USER already exists"
  exit 0
fi

# A group left by an earlier, interrupted run is reused rather than failing useradd.
if getent group "$KILN_USER" >/dev/null; then
  group_option="--gid $KILN_USER"
else
  group_option="--user-group"
fi
nologin=$(command -v nologin || echo /usr/sbin/nologin)
# shellcheck disable=SC2086 # group_option is two words on purpose
useradd --system $group_option --home-dir "$KILN_STATE_DIR" --no-create-home \
  --shell "$nologin" --comment "kiln queue worker" "$KILN_USER"
echo "created system user $KILN_USER ($(id -u "$KILN_USER"))"
