import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { SELF_CHECK_SCRIPT, VERIFY_SCRIPT } from "../../ami/steps/validate";
import { BuilderHost } from "../support/builder-host";

const ROOT = path.resolve(__dirname, "../..");
const SCRIPTS = path.join(ROOT, "ami", "scripts");
const SKIP = new Set(["node_modules", ".git", "dist", ".kiln"]);

/** Every shell script in the repository: *.sh, and files whose shebang names sh or bash (.ci/run). */
function shellScripts(dir = ROOT): string[] {
  const out: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (!SKIP.has(entry.name)) out.push(...shellScripts(full));
    } else if (entry.isFile()) {
      if (entry.name.endsWith(".sh")) out.push(full);
      else if (/^#!\s*\S*\/(env\s+)?(ba|da)?sh\b/.test(fs.readFileSync(full, "utf8").slice(0, 100))) out.push(full);
    }
  }
  return out.sort();
}

function provisionScripts(): string[] {
  return fs.readdirSync(path.join(SCRIPTS, "provision")).sort().map((f) => path.join(SCRIPTS, "provision", f));
}

describe("shell scripts", () => {
  it("finds the bake's scripts and .ci/run", () => {
    const found = shellScripts().map((f) => path.relative(ROOT, f));
    assert.ok(found.includes(".ci/run"), found.join(" "));
    assert.ok(found.includes("ami/scripts/clean.sh"), found.join(" "));
    assert.ok(found.filter((f) => f.startsWith("ami/scripts/provision/")).length >= 7, found.join(" "));
  });

  it("are shellcheck-clean, not one finding of any severity", () => {
    const r = spawnSync("shellcheck", ["--format=gcc", "--severity=style", ...shellScripts()], { encoding: "utf8" });
    assert.ifError(r.error);
    assert.equal(r.status, 0, `shellcheck:\n${r.stdout}${r.stderr}`);
    assert.equal(r.stdout, "");
  });

  it("run inline by the steps are shellcheck-clean too", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kiln-inline-sh-"));
    try {
      const files = Object.entries({ "self-check": SELF_CHECK_SCRIPT, verify: VERIFY_SCRIPT }).map(([name, text]) => {
        const file = path.join(dir, `${name}.sh`);
        fs.writeFileSync(file, `#!/bin/sh\n${text}`);
        return file;
      });
      const r = spawnSync("shellcheck", ["--format=gcc", "--severity=style", ...files], { encoding: "utf8" });
      assert.ifError(r.error);
      assert.equal(r.status, 0, `shellcheck:\n${r.stdout}${r.stderr}`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("on the builder are POSIX sh with set -eu, each provision script numbered and titled", () => {
    for (const file of [...provisionScripts(), path.join(SCRIPTS, "clean.sh")]) {
      const text = fs.readFileSync(file, "utf8");
      const name = path.relative(SCRIPTS, file);
      assert.match(text, /^#!\/bin\/sh\n/, `${name}: #!/bin/sh, so shellcheck holds it to POSIX (dash on Debian)`);
      assert.match(text, /^set -eu$/m, `${name}: set -eu`);
    }
    for (const file of provisionScripts()) {
      const name = path.basename(file);
      assert.match(name, /^\d{2}-[a-z0-9-]+\.sh$/, `${name}: NN-what.sh`);
      assert.match(fs.readFileSync(file, "utf8"), /^# step: \S.+$/m, `${name}: a "# step:" title for the step counter`);
      assert.ok(fs.statSync(file).mode & 0o100, `${name} is executable`);
    }
  });
});

describe("70-cloudwatch-agent.sh in a Debian root", function () {
  this.timeout(15 * 60_000);
  let host: BuilderHost;
  const script = "/var/tmp/70-cloudwatch-agent.sh";
  const config = "/opt/aws/amazon-cloudwatch-agent/etc/amazon-cloudwatch-agent.json";
  const wants = "/etc/systemd/system/multi-user.target.wants/amazon-cloudwatch-agent.service";

  before(async () => {
    host = await BuilderHost.start({ sshd: false, log: (l) => console.log(`      ${l}`) });
    fs.copyFileSync(path.join(SCRIPTS, "provision", "70-cloudwatch-agent.sh"), host.path(script));
  });
  after(async () => {
    await host?.stop();
  });
  afterEach(() => {
    for (const p of ["/opt/aws", "/usr/local/sbin/dnf", "/etc/systemd/system/amazon-cloudwatch-agent.service", wants]) {
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

  it("with dnf: installs the agent, ships the kiln units' journal to /kiln/<stack>/worker, and enables it", () => {
    stubDnf();
    const r = host.chroot(["sh", script], { KILN_STACK: "prod" });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(fs.readFileSync(host.path("/var/tmp/dnf.calls"), "utf8"), /install -y -q amazon-cloudwatch-agent/);
    const cfg = JSON.parse(fs.readFileSync(host.path(config), "utf8"));
    const [entry] = cfg.logs.logs_collected.journald.collect_list;
    assert.equal(entry.log_group_name, "/kiln/prod/worker");
    assert.equal(entry.log_stream_name, "{instance_id}");
    assert.deepEqual(entry.units, ["kiln-worker.service", "kiln-worker-env.service", "kiln-worker-failed.service"]);
    assert.match(fs.readFileSync(host.path("/var/tmp/ctl.calls"), "utf8"), new RegExp(`-a fetch-config -m ec2 -c file:${config}`));
    assert.ok(fs.lstatSync(host.path(wants)).isSymbolicLink(), "enabled for multi-user.target");
    assert.match(host.chroot(["id", "-nG", "cwagent"]).stdout, /\bsystemd-journal\b/, "cwagent may read the journal");
  });

  it("with dnf and an agent that cannot read the config: a warning, the bake goes on, the agent stays disabled", () => {
    stubDnf();
    const r = host.chroot(["sh", script], { KILN_STACK: "prod", CTL_EXIT: "1" });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^warning: .*left disabled/m);
    assert.ok(!fs.existsSync(host.path(wants)));
  });

  it("with apt and no agent in its sources: skipped with a line saying so, without touching the network", () => {
    const r = host.chroot(["sh", script], { KILN_STACK: "prod" });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^skipped: amazon-cloudwatch-agent is not in this image's apt sources/m);
    assert.ok(!fs.existsSync(host.path(config)));
  });

  it("without KILN_STACK: refuses, naming the variable", () => {
    const r = host.chroot(["sh", script]);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /KILN_STACK is not set/);
  });
});
