#!/bin/sh
# step: install the CloudWatch agent
# Ships the kiln units' journal to the stack's log group /kiln/<stack>/worker, which the instance role
# may write, and publishes memory and root-disk use (CWAgent mem_used_percent and disk_used_percent,
# dimension Stack, as the worker's own metrics) for the dashboard.
#
# The agent Amazon Linux 2023 installs cannot read the journal (logs_collected.journald is newer than
# it), so kiln-journal-export.timer copies the kiln units' journal into a file the agent tails, and
# logrotate bounds that file. On a dnf base, a configuration the agent cannot read fails the bake:
# a fleet whose log group stays empty is found out too late. Debian and Ubuntu carry no agent
# package: there this step is skipped and the logs stay in the journal.
set -eu
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH
umask 022
: "${KILN_STACK:?KILN_STACK is not set (the provision step passes it)}"

agent=amazon-cloudwatch-agent
if command -v dnf >/dev/null 2>&1; then
  dnf install -y -q "$agent" logrotate
elif command -v apt-get >/dev/null 2>&1; then
  # Only what the configured sources already list: no apt-get update, no download from elsewhere.
  if apt-cache policy "$agent" 2>/dev/null | grep -q 'Candidate: [0-9]'; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$agent" logrotate
  else
    echo "skipped: $agent is not in this image's apt sources (Debian and Ubuntu do not carry it); the worker's logs stay in the journal"
    exit 0
  fi
else
  echo "skipped: neither dnf nor apt-get here; the worker's logs stay in the journal"
  exit 0
fi

journal_copy=/var/log/kiln/journal.log
# The failure reporter is a template: one kiln-worker-failed@<unit>.service per failed unit.
units="kiln-worker.service kiln-worker-env.service kiln-worker-failed@*.service"
install -d -m 0755 /var/log/kiln

# The copy: the worker's own lines as it wrote them (JSON, which Logs Insights reads field by field),
# every 10 seconds from where the last copy ended. A timer rather than journalctl --follow: systemd
# 252 (AL2023's) saves --cursor-file only when journalctl ends by itself, so a follower that is
# restarted would copy the whole boot again.
export_unit=/etc/systemd/system/kiln-journal-export
units_args=""
set -f
for u in $units; do units_args="$units_args --unit=$u"; done
set +f
cat > "$export_unit.service.new" <<UNIT
# Written by kiln's bake (ami/scripts/provision/70-cloudwatch-agent.sh).
[Unit]
Description=Copy the kiln units' journal to $journal_copy for the CloudWatch agent
After=systemd-journald.service

[Service]
Type=oneshot
StateDirectory=kiln-journal-export
LogsDirectory=kiln
ExecStart=/bin/sh -c 'exec journalctl --boot --no-pager --lines=all --output=cat --cursor-file=/var/lib/kiln-journal-export/cursor$units_args >> $journal_copy'
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
NoNewPrivileges=yes
UNIT
cat > "$export_unit.timer.new" <<UNIT
# Written by kiln's bake (ami/scripts/provision/70-cloudwatch-agent.sh).
[Unit]
Description=Copy the kiln units' journal for the CloudWatch agent every 10 seconds

[Timer]
OnBootSec=5s
OnUnitActiveSec=10s
AccuracySec=1s

[Install]
WantedBy=timers.target
UNIT
mv -f "$export_unit.service.new" "$export_unit.service"
mv -f "$export_unit.timer.new" "$export_unit.timer"
echo "wrote $export_unit.service and .timer: the journal of $units to $journal_copy"

# copytruncate keeps the file the agent tails in place; the agent notices the truncation and reads on.
cat > /etc/logrotate.d/kiln-journal.new <<ROTATE
$journal_copy {
    size 50M
    rotate 1
    copytruncate
    missingok
    notifempty
}
ROTATE
mv -f /etc/logrotate.d/kiln-journal.new /etc/logrotate.d/kiln-journal
# logrotate runs daily; a busy worker can write far more than 50 MB in a day.
install -d -m 0755 /etc/systemd/system/logrotate.timer.d
printf '[Timer]\nOnCalendar=\nOnCalendar=hourly\n' > /etc/systemd/system/logrotate.timer.d/50-kiln-hourly.conf
echo "wrote /etc/logrotate.d/kiln-journal: $journal_copy kept under 100 MB, checked hourly"

home=/opt/aws/amazon-cloudwatch-agent
config="$home/etc/amazon-cloudwatch-agent.json"
install -d -m 0755 "$home/etc"
cat > "$config.new" <<JSON
{
  "agent": { "run_as_user": "cwagent", "omit_hostname": true },
  "metrics": {
    "namespace": "CWAgent",
    "aggregation_dimensions": [["Stack"]],
    "metrics_collected": {
      "mem": {
        "measurement": ["mem_used_percent"],
        "metrics_collection_interval": 60,
        "append_dimensions": { "Stack": "$KILN_STACK" }
      },
      "disk": {
        "measurement": ["used_percent"],
        "resources": ["/"],
        "drop_device": true,
        "metrics_collection_interval": 60,
        "append_dimensions": { "Stack": "$KILN_STACK" }
      }
    }
  },
  "logs": {
    "logs_collected": {
      "files": {
        "collect_list": [
          {
            "file_path": "$journal_copy",
            "log_group_name": "/kiln/$KILN_STACK/worker",
            "log_stream_name": "{instance_id}"
          }
        ]
      }
    }
  }
}
JSON
mv -f "$config.new" "$config"
echo "wrote $config: $journal_copy to /kiln/$KILN_STACK/worker, memory and disk to CWAgent"

# Translate now, so a configuration this agent cannot read stops the bake instead of the fleet's logs.
if ! "$home/bin/amazon-cloudwatch-agent-ctl" -a fetch-config -m ec2 -c "file:$config" 2>&1; then
  echo "error: this $agent cannot read the configuration above; the image would ship no logs and no memory or disk metrics" >&2
  exit 1
fi
for service in kiln-journal-export.timer "$agent"; do
  if [ -d /run/systemd/system ]; then
    systemctl enable "$service" 2>&1
  else
    systemctl --root=/ enable "$service" 2>&1
  fi
done
echo "$agent and kiln-journal-export enabled"
