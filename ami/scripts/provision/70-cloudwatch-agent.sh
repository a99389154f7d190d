#!/bin/sh
# step: install the CloudWatch agent
# Ships the worker's journal to the stack's log group /kiln/<stack>/worker, which the instance
# role may write. Installed when the base's package manager carries the agent (AL2023: dnf);
# Debian and Ubuntu do not, and the bake goes on without it: the logs stay in the journal.
set -eu
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH
umask 022
: "${KILN_STACK:?KILN_STACK is not set (the provision step passes it)}"

agent=amazon-cloudwatch-agent
if command -v dnf >/dev/null 2>&1; then
  dnf install -y -q "$agent"
elif command -v apt-get >/dev/null 2>&1; then
  # Only what the configured sources already list: no apt-get update, no download from elsewhere.
  if apt-cache policy "$agent" 2>/dev/null | grep -q 'Candidate: [0-9]'; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$agent"
  else
    echo "skipped: $agent is not in this image's apt sources (Debian and Ubuntu do not carry it); the worker's logs stay in the journal"
    exit 0
  fi
else
  echo "skipped: neither dnf nor apt-get here; the worker's logs stay in the journal"
  exit 0
fi

home=/opt/aws/amazon-cloudwatch-agent
config="$home/etc/amazon-cloudwatch-agent.json"
install -d -m 0755 "$home/etc"
cat > "$config.new" <<JSON
{
  "agent": { "run_as_user": "cwagent" },
  "logs": {
    "logs_collected": {
      "journald": {
        "collect_list": [
          {
            "units": ["kiln-worker.service", "kiln-worker-env.service", "kiln-worker-failed.service"],
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
echo "wrote $config: journal of the kiln units to /kiln/$KILN_STACK/worker"

# The agent reads the journal through journalctl, which needs the systemd-journal group.
if getent passwd cwagent >/dev/null && getent group systemd-journal >/dev/null; then
  usermod -a -G systemd-journal cwagent
fi

# Translate now, so a configuration this agent cannot read shows up in the bake, not on the fleet.
if "$home/bin/amazon-cloudwatch-agent-ctl" -a fetch-config -m ec2 -c "file:$config" 2>&1; then
  if [ -d /run/systemd/system ]; then
    systemctl enable "$agent" 2>&1
  else
    systemctl --root=/ enable "$agent" 2>&1
  fi
  echo "$agent enabled"
else
  echo "warning: this $agent cannot read the configuration above (journald collection needs a recent agent); left disabled, the worker's logs stay in the journal"
fi
