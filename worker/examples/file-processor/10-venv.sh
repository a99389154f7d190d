#!/bin/sh
# step: install the file processor and its venv under /opt/file-processor
# kiln:bake.appDir's script for the prod stack (Pulumi.prod.yaml runs it as kiln:workerApp). Run as
# root on the builder after kiln's own scripts, with $KILN_APP the uploaded copy of this directory.
# The seeds ran the worker from a venv to escape pip conflicts with the system's Python; so does this,
# with the code and the venv root's and read-only to the worker (kiln-worker.service: ProtectSystem).
set -eu
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH
umask 022
: "${KILN_APP:?KILN_APP is not set (the provision step passes it)}"

app=/opt/file-processor
python=$(command -v python3 || true)
[ -n "$python" ] || { echo "python3 is not installed on this image: install it first (dnf install python3, apt-get install python3-venv)" >&2; exit 1; }
[ -f "$KILN_APP/app.py" ] || { echo "no app.py in $KILN_APP" >&2; exit 1; }

# Rebuilt whole on every run, in place (a venv carries its absolute path): files of an older app
# must not linger. A failed run fails the bake, so a half-built app never reaches an image.
rm -rf "$app"
install -d -m 0755 -o root -g root "$app"
for f in "$KILN_APP"/*.py; do install -m 0644 -o root -g root "$f" "$app/"; done
if [ -f "$KILN_APP/requirements.txt" ]; then
  "$python" -m venv "$app/venv"
  # No cache: pip's cache in root's home would go into the image (clean.sh removes it anyway).
  "$app/venv/bin/python3" -m pip install --no-cache-dir --disable-pip-version-check --quiet -r "$KILN_APP/requirements.txt"
else
  # Standard library only: no pip in the image at all.
  "$python" -m venv --without-pip "$app/venv"
fi
# Bytecode now: /opt is read-only to the worker, so Python could never write its cache there.
"$app/venv/bin/python3" -m compileall -q "$app"/*.py
chown -R root:root "$app"
chmod -R u=rwX,go=rX "$app"
echo "file processor at $app: $("$app/venv/bin/python3" --version)"
