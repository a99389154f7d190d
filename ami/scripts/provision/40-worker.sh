#!/bin/sh
# step: install the worker bundle
# Replaces the bundle as a whole: files of an older bundle must not linger next to the new one.
set -eu
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH
umask 022
: "${KILN_PAYLOAD:?KILN_PAYLOAD is not set (the provision step passes it)}"
: "${KILN_BUNDLE_DIR:?KILN_BUNDLE_DIR is not set}"

staging="$KILN_BUNDLE_DIR.new"
previous="$KILN_BUNDLE_DIR.old"
rm -rf "$staging" "$previous"
mkdir -p "$staging"
cp -R "$KILN_PAYLOAD/worker/." "$staging/"
chown -R root:root "$staging"
# Readable by everyone, writable by root only; kiln-worker.js keeps its execute bit.
chmod -R u=rwX,go=rX "$staging"
if [ -d "$KILN_BUNDLE_DIR" ]; then mv "$KILN_BUNDLE_DIR" "$previous"; fi
mv "$staging" "$KILN_BUNDLE_DIR"
rm -rf "$previous"
echo "worker bundle at $KILN_BUNDLE_DIR: $(find "$KILN_BUNDLE_DIR" -type f | wc -l) files"
