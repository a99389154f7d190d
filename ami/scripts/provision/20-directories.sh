#!/bin/sh
# step: create kiln's directories
# The bundle and the runtime are root's and read-only to the worker; the state directory is the
# worker's scratch space (kiln-worker.service's StateDirectory= keeps it so at every start).
set -eu
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH
umask 022
: "${KILN_USER:?KILN_USER is not set (the provision step passes it)}"
: "${KILN_BUNDLE_DIR:?KILN_BUNDLE_DIR is not set}"
: "${KILN_NODE:?KILN_NODE is not set}"
: "${KILN_STATE_DIR:?KILN_STATE_DIR is not set}"

node_bin=$(dirname "$KILN_NODE")
for dir in "$KILN_BUNDLE_DIR" "$node_bin" /etc/kiln; do
  install -d -m 0755 -o root -g root "$dir"
done
install -d -m 0750 -o "$KILN_USER" -g "$KILN_USER" "$KILN_STATE_DIR"
echo "directories: $KILN_BUNDLE_DIR $node_bin /etc/kiln $KILN_STATE_DIR"
