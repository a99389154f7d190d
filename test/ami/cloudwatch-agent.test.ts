import { strict as assert } from "node:assert";
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { BuilderHost } from "../support/builder-host";
import { assertVerifies, SystemdRoot } from "../worker/systemd/systemd-analyze";
import { AGENT_METRICS } from "../../infra/fleet-dashboard";
import { AGENT_METRICS_NAMESPACE } from "../../infra/worker-policy";
import { METRIC_DIMENSION } from "../../worker/contract";

const ROOT = path.resolve(__dirname, "../..");
const SCRIPT = path.join(ROOT, "ami", "scripts", "provision", "70-cloudwatch-agent.sh");
const CONFIG = "/opt/aws/amazon-cloudwatch-agent/etc/amazon-cloudwatch-agent.json";
const EXPORT = "/etc/systemd/system/kiln-journal-export";
const JOURNAL_COPY = "/var/log/kiln/journal.log";
const WANTS = {
  agent: "/etc/systemd/system/multi-user.target.wants/amazon-cloudwatch-agent.service",
  timer: "/etc/systemd/system/timers.target.wants/kiln-journal-export.timer",
};
const JOURNAL_REMOTE = "/lib/systemd/systemd-journal-remote";

describe("70-cloudwatch-agent.sh in a Debian root", function () {
  this.timeout(15 * 60_000);
  let host: BuilderHost;
  const script = "/var/tmp/70-cloudwatch-agent.sh";

  before(async () => {
    host = await BuilderHost.start({ sshd: false, log: (l) => console.log(`      ${l}`) });
    fs.copyFileSync(SCRIPT, host.path(script));
  });
  after(async () => {
    await host?.stop();
  });
  afterEach(() => {
    for (const p of ["/opt/aws", "/usr/local/sbin/dnf", "/etc/systemd/system/amazon-cloudwatch-agent.service", `${EXPORT}.service`, `${EXPORT}.timer`, ...Object.values(WANTS), "/var/tmp/dnf.calls", "/var/tmp/ctl.calls"]) {
      fs.rmSync(host.path(p), { recursive: true, force: true });
    }
  });

  /** A dnf that "installs" the agent as its RPM does: the ctl tool, the unit and the cwagent user. */
  function stubDnf(): void {
    fs.writeFileSync(
      host.path("/usr/local/sbin/dnf"),
      `#!/bin/sh
set -eu
echo "dnf $*" >> /var/tmp/dnf.calls
mkdir -p /opt/aws/amazon-cloudwatch-agent/bin
printf '#!/bin/sh\\necho "ctl $*" >> /var/tmp/ctl.calls\\nexit "\${CTL_EXIT:-0}"\\n' > /opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl
chmod 0755 /opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl
printf '[Service]\\nExecStart=/bin/true\\n[Install]\\nWantedBy=multi-user.target\\n' > /etc/systemd/system/amazon-cloudwatch-agent.service
getent passwd cwagent >/dev/null || useradd --system cwagent
`,
      { mode: 0o755 },
    );
  }

  function provision(): { config: any; service: string; timer: string } {
    stubDnf();
    const r = host.chroot(["sh", script], { KILN_STACK: "prod" });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    return {
      config: JSON.parse(fs.readFileSync(host.path(CONFIG), "utf8")),
      service: fs.readFileSync(host.path(`${EXPORT}.service`), "utf8"),
      timer: fs.readFileSync(host.path(`${EXPORT}.timer`), "utf8"),
    };
  }

  it("with dnf: installs the agent and logrotate, has it tail the journal copy into /kiln/<stack>/worker, and enables both", () => {
    const { config } = provision();
    assert.match(fs.readFileSync(host.path("/var/tmp/dnf.calls"), "utf8"), /install -y -q amazon-cloudwatch-agent logrotate/);
    assert.equal(config.logs.logs_collected.journald, undefined, "the agent AL2023 installs rejects journald collection");
    const [entry] = config.logs.logs_collected.files.collect_list;
    assert.deepEqual(entry, { file_path: JOURNAL_COPY, log_group_name: "/kiln/prod/worker", log_stream_name: "{instance_id}" });
    assert.match(fs.readFileSync(host.path("/var/tmp/ctl.calls"), "utf8"), new RegExp(`-a fetch-config -m ec2 -c file:${CONFIG}`));
    for (const link of Object.values(WANTS)) assert.ok(fs.lstatSync(host.path(link)).isSymbolicLink(), `${link} enabled`);
    const rotate = fs.readFileSync(host.path("/etc/logrotate.d/kiln-journal"), "utf8");
    assert.match(rotate, new RegExp(`^${JOURNAL_COPY} \\{[\\s\\S]*size 50M[\\s\\S]*rotate 1[\\s\\S]*copytruncate`, "m"));
  });

  it("publishes memory and root-disk use under the names and dimension the dashboard reads", () => {
    const { config } = provision();
    const metrics = config.metrics;
    assert.equal(metrics.namespace, AGENT_METRICS_NAMESPACE, "a namespace the worker role may put metrics in");
    assert.equal(config.agent.omit_hostname, true, "no per-host dimension: one series per stack");
    assert.deepEqual(metrics.aggregation_dimensions, [[METRIC_DIMENSION]]);
    // The agent names a metric <plugin>_<measurement>, unless the measurement already carries the plugin.
    const names = Object.entries(metrics.metrics_collected).flatMap(([plugin, m]: [string, any]) =>
      m.measurement.map((x: string) => (x.startsWith(`${plugin}_`) ? x : `${plugin}_${x}`)),
    );
    assert.deepEqual(names.sort(), [AGENT_METRICS.disk, AGENT_METRICS.memory].sort());
    for (const m of Object.values(metrics.metrics_collected) as any[]) assert.deepEqual(m.append_dimensions, { [METRIC_DIMENSION]: "prod" });
    assert.deepEqual(metrics.metrics_collected.disk.resources, ["/"]);
  });

  it("writes journal-copy units that systemd-analyze verifies without a word", () => {
    const { service, timer } = provision();
    const root = new SystemdRoot({ "kiln-journal-export.service": service, "kiln-journal-export.timer": timer });
    try {
      assertVerifies(root.verify("kiln-journal-export.service", "kiln-journal-export.timer"));
    } finally {
      root.remove();
    }
    assert.match(timer, /^OnUnitActiveSec=10s$/m);
    assert.match(timer, /^WantedBy=timers\.target$/m);
  });

  it("copies only the kiln units' lines, each once, resuming where the last copy ended (journalctl 252, as on AL2023)", function () {
    if (!fs.existsSync(JOURNAL_REMOTE)) throw new Error(`${JOURNAL_REMOTE} is missing: .ci/run installs it (apt-get install systemd-journal-remote)`);
    const { service } = provision();
    const command = /^ExecStart=\/bin\/sh -c '(.*)'$/m.exec(service)![1];
    assert.match(command, new RegExp(`>> ${JOURNAL_COPY}$`));
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kiln-journal-"));
    try {
      const copy = path.join(dir, "journal.log");
      // The same command, reading test journals and writing here instead of the system's.
      const run = () =>
        execFileSync("sh", ["-c", command.replace("journalctl ", `journalctl --directory=${dir}/journal `).replace("/var/lib/kiln-journal-export/cursor", `${dir}/cursor`).replace(JOURNAL_COPY, copy)]);
      fs.mkdirSync(path.join(dir, "journal"));
      const boot = fs.readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim().replace(/-/g, "");
      let clock = Date.now() * 1000;
      const write = (file: string, entries: [string, string][]) => {
        const text = entries
          .map(([unit, message]) => {
            clock += 1000;
            return `__REALTIME_TIMESTAMP=${clock}\n__MONOTONIC_TIMESTAMP=${clock % 1e9}\n_BOOT_ID=${boot}\n_SYSTEMD_UNIT=${unit}\nMESSAGE=${message}\n\n`;
          })
          .join("");
        const r = spawnSync(JOURNAL_REMOTE, [`--output=${path.join(dir, "journal", file)}`, "-"], { input: text });
        assert.equal(r.status, 0, String(r.stderr));
      };
      write("a.journal", [
        ["kiln-worker-env.service", '{"msg":"environment written"}'],
        ["sshd.service", "Accepted publickey for ec2-user"],
        ["kiln-worker.service", '{"msg":"worker started"}'],
      ]);
      run();
      write("b.journal", [
        ["kiln-worker.service", '{"msg":"message done"}'],
        ["amazon-cloudwatch-agent.service", "agent noise"],
        ["kiln-worker-failed@kiln-worker.service", '{"msg":"worker failed"}'],
      ]);
      run();
      run();
      assert.deepEqual(fs.readFileSync(copy, "utf8").trim().split("\n"), [
        '{"msg":"environment written"}',
        '{"msg":"worker started"}',
        '{"msg":"message done"}',
        '{"msg":"worker failed"}',
      ]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("with dnf and an agent that cannot read the config: fails the bake, saying why, and enables nothing", () => {
    stubDnf();
    const r = host.chroot(["sh", script], { KILN_STACK: "prod", CTL_EXIT: "1" });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /^error: this amazon-cloudwatch-agent cannot read the configuration above; the image would ship no logs/m);
    for (const link of Object.values(WANTS)) assert.ok(!fs.existsSync(host.path(link)), `${link} not enabled`);
  });

  it("with apt and no agent in its sources: skipped with a line saying so, without touching the network", () => {
    const r = host.chroot(["sh", script], { KILN_STACK: "prod" });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^skipped: amazon-cloudwatch-agent is not in this image's apt sources/m);
    assert.ok(!fs.existsSync(host.path(CONFIG)));
  });

  it("without KILN_STACK: refuses, naming the variable", () => {
    const r = host.chroot(["sh", script]);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /KILN_STACK is not set/);
  });
});
