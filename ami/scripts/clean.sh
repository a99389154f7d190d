#!/bin/sh
# Removes what a launched copy of this machine must not inherit: SSH host keys and authorized keys,
# shell histories, credentials, kiln's env files, cloud-init's instance state, the machine id, logs,
# package caches and temporary files (AWS's guidance for shared AMIs).
#
# The bake's last command over SSH, run as root in one go. Removing keys ends every future login,
# not this session: sshd holds its host key in memory and checked our key when we logged in. So
# nothing here restarts sshd or kills a process, and the session stays usable until it closes.
set -eu
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH

removed=0
# Removes the given paths that exist, counting them.
remove() {
  for target in "$@"; do
    if [ -e "$target" ] || [ -L "$target" ]; then
      rm -rf --one-file-system -- "$target"
      removed=$((removed + 1))
    fi
  done
}

report() {
  echo "$1: $removed removed"
  removed=0
}

# SSH host keys: every instance makes its own at first boot (cloud-init, sshd-keygen).
remove /etc/ssh/ssh_host_*
report "ssh host keys"

# Every home directory, root's and each account's: authorized keys, histories, AWS credentials.
homes=$( (getent passwd | cut -d: -f6; echo /root; for h in /home/*; do echo "$h"; done) | sort -u)
for home in $homes; do
  if [ "$home" = / ] || [ ! -d "$home" ]; then continue; fi
  remove "$home/.ssh/authorized_keys" "$home/.ssh/authorized_keys2"
done
remove /root/.ssh/*
report "authorized keys and root's ssh files"
for home in $homes; do
  if [ "$home" = / ] || [ ! -d "$home" ]; then continue; fi
  remove "$home"/.*_history "$home/.lesshst" "$home/.viminfo" "$home/.wget-hsts"
  remove "$home/.aws"
done
report "shell histories and AWS credentials"

# kiln's boot-time files: written on each instance from SSM and user data, never baked.
remove /etc/kiln/*.env "${KILN_WORKER_ENV:-/etc/kiln/worker.env}" "${KILN_INSTANCE_ENV:-/etc/kiln/instance.env}"
[ -z "${KILN_SIZING_DROPIN:-}" ] || remove "$KILN_SIZING_DROPIN"
if [ -n "${KILN_STATE_DIR:-}" ] && [ -d "$KILN_STATE_DIR" ]; then
  for entry in "$KILN_STATE_DIR"/* "$KILN_STATE_DIR"/.[!.]*; do remove "$entry"; done
fi
report "kiln env files and state"

# cloud-init: instance state, seed and logs, so the copy runs cloud-init as a new instance.
if command -v cloud-init >/dev/null 2>&1; then
  cloud-init clean --logs --seed
  echo "cloud-init: cleaned"
else
  remove /var/lib/cloud/instances /var/lib/cloud/instance /var/lib/cloud/data /var/lib/cloud/sem /var/lib/cloud/seed
  remove /var/log/cloud-init.log /var/log/cloud-init-output.log
  report "cloud-init state (cloud-init not installed)"
fi

# Identity of this machine: empty machine-id makes systemd generate one at the copy's first boot.
if [ -e /etc/machine-id ]; then : > /etc/machine-id; fi
remove /var/lib/dbus/machine-id /var/lib/systemd/random-seed /var/lib/systemd/credential.secret
remove /var/lib/dhcp/*.leases /var/lib/dhclient/*.lease* /var/lib/NetworkManager/*.lease
report "machine id, random seed and leases"

# Logs: rotated copies and the journal removed, the files still open by daemons emptied in place.
if [ -d /run/systemd/system ]; then journalctl --rotate >/dev/null 2>&1 || true; fi
if [ -d /var/log/journal ]; then
  find /var/log/journal -type f \( -name '*.journal' -o -name '*.journal~' \) -exec rm -f {} +
fi
find /var/log -type f \( -name '*.gz' -o -name '*.[0-9]' -o -name '*.old' -o -name '*-[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]' \) -exec rm -f {} +
find /var/log -type f -exec truncate -s 0 {} +
echo "logs: journal removed, $(find /var/log -type f | wc -l) files emptied"

# Package caches.
if command -v dnf >/dev/null 2>&1; then
  dnf clean all >/dev/null
  remove /var/cache/dnf/*
  echo "package caches: dnf cleaned"
fi
if command -v apt-get >/dev/null 2>&1; then
  apt-get clean
  echo "package caches: apt cleaned"
fi

# Temporary files, the uploaded payload with them.
for dir in /tmp /var/tmp; do
  for entry in "$dir"/* "$dir"/.[!.]*; do remove "$entry"; done
done
report "temporary files"

sync
echo "done"
