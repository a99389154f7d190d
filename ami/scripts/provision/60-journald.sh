#!/bin/sh
# step: bound the journal
# The worker logs to the journal only. Kept on disk across reboots, but bounded so a chatty
# handler cannot fill the root volume, and rate-limited high enough not to drop a busy worker.
set -eu
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH
umask 022

dir=/etc/systemd/journald.conf.d
install -d -m 0755 "$dir"
cat > "$dir/60-kiln.conf.new" <<'CONF'
# Written by kiln's bake (ami/scripts/provision/60-journald.sh).
[Journal]
Storage=persistent
SystemMaxUse=512M
SystemKeepFree=1G
SystemMaxFileSize=64M
MaxRetentionSec=14day
RateLimitIntervalSec=30s
RateLimitBurst=20000
CONF
mv -f "$dir/60-kiln.conf.new" "$dir/60-kiln.conf"
echo "wrote $dir/60-kiln.conf"
if [ -d /run/systemd/system ]; then
  systemctl restart systemd-journald
  echo "restarted systemd-journald"
fi
