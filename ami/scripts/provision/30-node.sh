#!/bin/sh
# step: install the Node runtime
# The pinned runtime from the payload, the same on every base image, checked by running it: a
# runtime for the wrong architecture fails here, not at the first boot of the fleet.
set -eu
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH
: "${KILN_PAYLOAD:?KILN_PAYLOAD is not set (the provision step passes it)}"
: "${KILN_NODE:?KILN_NODE is not set}"

want=$(head -n 1 "$KILN_PAYLOAD/node/VERSION")
platform=$(sed -n 2p "$KILN_PAYLOAD/node/VERSION")
install -m 0755 -o root -g root "$KILN_PAYLOAD/node/bin/node" "$KILN_NODE.new"
if ! got=$("$KILN_NODE.new" --version); then
  rm -f "$KILN_NODE.new"
  echo "the Node runtime for $platform does not run on this $(uname -m) host" >&2
  exit 1
fi
if [ "$got" != "$want" ]; then
  rm -f "$KILN_NODE.new"
  echo "the Node runtime reports $got, the payload says $want" >&2
  exit 1
fi
mv -f "$KILN_NODE.new" "$KILN_NODE"
echo "node $got ($platform) at $KILN_NODE"
