#!/bin/sh
# Removes what a launched copy of this machine must not inherit (AWS's guidance for shared AMIs, and
# EC2 Image Builder's own cleanup): SSH host keys and every user's SSH files, shell histories, the
# credentials of every tool that keeps them in a home directory or /etc, application env files,
# kiln's env files, cloud-init's instance state, agents' registration state and logs, the machine id,
# the random seed, swap contents, logs, package caches and temporary files.
#
# Files are overwritten with zeros before they are removed (shred): a removed file's blocks would
# otherwise still be in the snapshot, readable by anyone who can launch the image.
#
#   clean.sh               the bake's last command over SSH, as root (ami/steps/clean.ts)
#   clean.sh --at-shutdown run by kiln-seal.service while the builder stops for its snapshot: what
#                          services write as they stop (random seed, agents' state, logs) goes again
#
# Removing keys ends every future login, not this session: sshd holds its host key in memory and
# checked our key when we logged in. So nothing here restarts sshd or kills a process.
set -eu
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH
umask 077

mode=${1:-clean}
case "$mode" in
  clean | --at-shutdown) ;;
  *) echo "usage: clean.sh [--at-shutdown]" >&2; exit 2 ;;
esac

have_shred=yes
command -v shred >/dev/null 2>&1 || have_shred=no

removed=0
list=$(mktemp)
trap 'rm -f "$list"' EXIT

# Overwrites every regular file at or below the given paths with zeros, in place, on their own file
# system. Never through a symlink (shred would follow it to whatever it points at), never a file with
# other hard links (their content would go too), never a sparse file (shred would write its whole
# apparent size: /var/log/lastlog can claim a terabyte).
overwrite() {
  [ "$have_shred" = yes ] || return 0
  find "$@" -xdev -type f -links 1 -printf '%s %b %p\n' 2>/dev/null |
    while read -r size blocks path; do
      if [ "$size" -le $((blocks * 512 + 65536)) ]; then printf '%s\0' "$path"; fi
    done | xargs -0 -r shred --force --zero --iterations=0 -- 2>/dev/null || true
}

# Overwrites and removes each path that exists: a file, a symlink (only the link) or a directory.
wipe() {
  for target in "$@"; do
    if [ -L "$target" ]; then
      rm -f -- "$target"
    elif [ -e "$target" ]; then
      overwrite "$target"
      rm -rf --one-file-system -- "$target"
    else
      continue
    fi
    removed=$((removed + 1))
  done
}

# Every entry of each directory, dot-files included (names such as "..token" too); the directory stays.
wipe_contents() {
  for dir in "$@"; do
    if [ ! -d "$dir" ] || [ -L "$dir" ]; then continue; fi
    n=$(find "$dir" -mindepth 1 -maxdepth 1 | wc -l)
    [ "$n" -gt 0 ] || continue
    overwrite "$dir"
    find "$dir" -mindepth 1 -maxdepth 1 -exec rm -rf --one-file-system -- {} +
    removed=$((removed + n))
  done
}

report() {
  echo "$1: $removed removed"
  removed=0
}

# Home directories: root's, /home/*, and every account's whose home is a directory of its own.
homes() {
  {
    echo /root
    for h in /home/*; do echo "$h"; done
    getent passwd | cut -d: -f6
  } | sort -u | while IFS= read -r h; do
    case "$h" in
      / | /bin | /sbin | /usr | /usr/* | /dev | /proc | /sys | /run | /run/* | /var/run | /var/run/* | /nonexistent | "") continue ;;
    esac
    if [ -d "$h" ] && [ ! -L "$h" ]; then echo "$h"; fi
  done
}

# What services write while they run and as they stop: run again by kiln-seal.service at shutdown.
clean_service_state() {
  # Identity: systemd makes a new machine id at the copy's first boot from an empty file; a seed
  # shared by every instance is no seed; credential.secret encrypts systemd credentials.
  if [ -e /etc/machine-id ]; then : > /etc/machine-id; fi
  wipe /var/lib/dbus/machine-id /var/lib/systemd/random-seed /var/lib/systemd/credential.secret
  wipe /var/lib/dhcp/*.leases /var/lib/dhclient/*.lease* /var/lib/NetworkManager/*.lease
  report "machine id, random seed and leases"

  # The SSM agent's registration and per-instance state (the builder's instance id, its Vault with a
  # hybrid activation's private key), and the CloudWatch agent's logs and journal cursor. A running
  # SSM agent may be carrying this very session (Session Manager): its state goes at shutdown.
  if [ "$mode" = clean ] && systemctl is-active --quiet amazon-ssm-agent.service 2>/dev/null; then
    echo "SSM agent running: its state goes once it stops (kiln-seal.service)"
  else
    wipe_contents /var/lib/amazon/ssm
  fi
  wipe_contents /opt/aws/amazon-cloudwatch-agent/logs
  report "SSM and CloudWatch agent state"

  # Logs: all overwritten; the journal and rotated copies removed, the files daemons still hold
  # open emptied in place.
  overwrite /var/log
  find /var/log -xdev -type f \( -name '*.journal' -o -name '*.journal~' -o -name '*.gz' -o -name '*.xz' -o -name '*.zst' \
    -o -name '*.[0-9]' -o -name '*.old' -o -name '*-[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]' \) -delete
  find /var/log -xdev -type f -exec truncate -s 0 {} +
  echo "logs: journal removed, $(find /var/log -xdev -type f | wc -l) files emptied"
}

if [ "$mode" = --at-shutdown ]; then
  # Best effort: the machine is going down whatever happens here.
  set +e
  clean_service_state
  sync
  exit 0
fi

[ "$have_shred" = yes ] || echo "warning: shred is not installed: files are removed without being overwritten" >&2

# SSH host keys: every instance makes its own at first boot (cloud-init, sshd-keygen).
wipe /etc/ssh/ssh_host_*
report "ssh host keys"

# Every home directory: SSH files (authorized keys, private keys, known hosts), histories, and what
# tools keep credentials or caches in (cloud CLIs, registries, package managers, git, databases).
homes > "$list"
while IFS= read -r home; do
  wipe "$home/.ssh" "$home"/.*_history "$home/.lesshst" "$home/.viminfo" "$home/.wget-hsts"
  wipe "$home/.aws" "$home/.azure" "$home/.config/gcloud" "$home/.docker" "$home/.kube" "$home/.config/gh" "$home/.config/hub" \
    "$home/.npmrc" "$home/.yarnrc" "$home/.yarnrc.yml" "$home/.npm" "$home/.pypirc" "$home/.pip" "$home/.config/pip" \
    "$home/.netrc" "$home/.pgpass" "$home/.my.cnf" "$home/.git-credentials" "$home/.config/git/credentials" \
    "$home/.gnupg" "$home/.vault-token" "$home/.terraform.d" "$home/.boto" "$home/.s3cfg" "$home/.config/rclone" \
    "$home/.composer/auth.json" "$home/.config/composer/auth.json" "$home/.gem/credentials" \
    "$home/.cargo/credentials" "$home/.cargo/credentials.toml" "$home/.m2/settings.xml" "$home/.local/share/keyrings" \
    "$home/.cache"
done < "$list"
report "home directories: ssh files, histories, tool credentials and caches"

# The same tools' system-wide files: pip's and npm's configuration (index URLs with tokens) and
# apt's credentials for private repositories.
wipe /etc/pip.conf /etc/xdg/pip/pip.conf /etc/npmrc /usr/etc/npmrc /usr/local/etc/npmrc /etc/apt/auth.conf /var/cache/pip
wipe_contents /etc/apt/auth.conf.d
report "system-wide tool credentials"

# /etc/environment is pam_env's plain NAME=value list: drop the lines that set a credential.
credential_line='^[[:space:]]*(export[[:space:]]+)?[A-Za-z0-9_]*(KEY|SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIAL|AUTH)[A-Za-z0-9_]*[[:space:]]*='
if [ -f /etc/environment ] && grep -Eiq "$credential_line" /etc/environment; then
  names=$(grep -Ei "$credential_line" /etc/environment | sed -E 's/^[[:space:]]*(export[[:space:]]+)?([A-Za-z0-9_]+).*/\2/' | tr '\n' ' ')
  grep -Eiv "$credential_line" /etc/environment > /etc/environment.kiln-new || true
  chmod 0644 /etc/environment.kiln-new
  overwrite /etc/environment
  mv -f /etc/environment.kiln-new /etc/environment
  echo "/etc/environment: removed ${names% }"
fi

# Applications under /opt and /srv: configuration comes from SSM at boot, never from a file baked
# next to the code (dotenv files, credential files, tool credentials an install left behind).
find /opt /srv -xdev \( -name .git -o -name node_modules \) -prune -o -type f \
  \( -name .env -o -name '.env.*' -o -name credentials.json -o -name .npmrc -o -name .pypirc -o -name pip.conf \
  -o -name .netrc -o -name .git-credentials -o -name .pgpass \) \
  ! -name .env.example ! -name .env.sample ! -name .env.template -print 2>/dev/null > "$list" || true
while IFS= read -r f; do
  echo "removed $f"
  wipe "$f"
done < "$list"
report "application credential files in /opt and /srv"

# kiln's boot-time files: written on each instance from SSM and user data, never baked.
wipe /etc/kiln/*.env "${KILN_WORKER_ENV:-/etc/kiln/worker.env}" "${KILN_INSTANCE_ENV:-/etc/kiln/instance.env}"
[ -z "${KILN_SIZING_DROPIN:-}" ] || wipe "$KILN_SIZING_DROPIN"
[ -z "${KILN_STATE_DIR:-}" ] || wipe_contents "$KILN_STATE_DIR"
report "kiln env files and state"

# cloud-init: instance state (user data included), seed and logs, so the copy runs cloud-init as a
# new instance. Overwritten first: cloud-init clean only removes.
wipe /var/lib/cloud/instances /var/lib/cloud/instance /var/lib/cloud/data /var/lib/cloud/sem /var/lib/cloud/seed \
  /var/log/cloud-init.log /var/log/cloud-init-output.log
if command -v cloud-init >/dev/null 2>&1; then
  cloud-init clean --logs --seed
fi
report "cloud-init state"

# Swap files hold whatever was in memory: zeroed and made again, so /etc/fstab still finds them.
for swap in $( (awk 'NR > 1 && $2 == "file" { print $1 }' /proc/swaps 2>/dev/null; awk '$3 == "swap" && $1 ~ /^\// { print $1 }' /etc/fstab 2>/dev/null; echo /swapfile) | sort -u); do
  if [ ! -f "$swap" ] || [ -L "$swap" ]; then continue; fi
  uuid=$(blkid -o value -s UUID "$swap" 2>/dev/null || true)
  swapoff "$swap" 2>/dev/null || true
  if [ "$have_shred" = yes ]; then shred --force --zero --iterations=0 -- "$swap"; fi
  mkswap ${uuid:+-U "$uuid"} "$swap" >/dev/null
  echo "swap file $swap: zeroed"
done

# While systemd runs, journald writes to /var/log/journal until the builder is off: from here on it
# writes to /run (the first boot of each instance flushes its own journal to /var again).
if [ -d /run/systemd/system ]; then journalctl --relinquish-var 2>/dev/null || true; fi
clean_service_state

# Package caches.
if command -v dnf >/dev/null 2>&1; then
  dnf clean all >/dev/null
  wipe /var/cache/dnf/*
  echo "package caches: dnf cleaned"
fi
if command -v apt-get >/dev/null 2>&1; then
  apt-get clean
  echo "package caches: apt cleaned"
fi

# Temporary files, the uploaded payload with them.
wipe_contents /tmp /var/tmp
report "temporary files"

# While systemd runs, the builder's shutdown (the snapshot's stop) still writes: systemd-random-seed
# a new seed, systemd-update-utmp a record, agents their state and logs. kiln-seal.service, which
# stops after those services, runs this script's --at-shutdown part. Unit and script live in /run
# only: neither reaches the image.
if [ -d /run/systemd/system ] && [ -n "${KILN_CLEAN_SCRIPT:-}" ] && [ -f "$KILN_CLEAN_SCRIPT" ]; then
  cat > /run/systemd/system/kiln-seal.service <<UNIT
# Written by kiln's clean.sh on the builder; /run only, so never part of the image.
[Unit]
Description=Remove what stopping services wrote, before the image's snapshot
DefaultDependencies=no
Conflicts=shutdown.target
Before=shutdown.target
# Stopped after these, which write as they stop.
Before=systemd-random-seed.service systemd-update-utmp.service systemd-journal-flush.service
Before=amazon-ssm-agent.service amazon-cloudwatch-agent.service auditd.service rsyslog.service
RequiresMountsFor=/var/log /var/lib /opt /etc

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/true
ExecStop=/bin/sh $KILN_CLEAN_SCRIPT --at-shutdown
TimeoutStopSec=5min
UNIT
  chmod 0644 /run/systemd/system/kiln-seal.service
  systemctl daemon-reload
  systemctl start kiln-seal.service
  echo "shutdown: journal kept in /run, kiln-seal.service cleans again after the services stop"
elif [ -n "${KILN_CLEAN_SCRIPT:-}" ]; then
  rm -f -- "$KILN_CLEAN_SCRIPT"
fi

sync
echo "done"
