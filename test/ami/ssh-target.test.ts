import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { defaultCacheDir, listPayloadFiles, NODE_VERSION, preparePayload } from "../../ami/payload";
import { connectBefore } from "../../ami/ssh";
import type { BakeState } from "../../ami/state";
import { Step } from "../../ami/step";
import { stepClean } from "../../ami/steps/clean";
import { provisionScripts, stepProvision } from "../../ami/steps/provision";
import { stepUpload } from "../../ami/steps/upload";
import { stepValidate } from "../../ami/steps/validate";
import { stepWaitForSsh } from "../../ami/steps/wait-for-ssh";
import { INSTALL } from "../../worker/contract";
import { BuilderHost, recordingContext, sshBakeState } from "../support/builder-host";

const ROOT = path.resolve(__dirname, "../..");
const ENV = { ...process.env, SYSTEMD_LOG_COLOR: "0", SYSTEMD_PAGER: "cat", SYSTEMD_COLORS: "0" };

/**
 * `--target ssh` for real: the SSH-side steps, called directly, provision a Debian root over its own
 * sshd (logged in as a sudo user, like a cloud image's), then the root is inspected from outside.
 */
describe("--target ssh: provisioning a Debian host over SSH", function () {
  this.timeout(15 * 60_000);
  let host: BuilderHost;
  let state: BakeState;
  const lines: string[] = [];
  const ran: Step<BakeState>[] = [];

  async function runStep(step: Step<BakeState>) {
    ran.push(step);
    const t0 = Date.now();
    await step.run(state, recordingContext(step.name, lines));
    lines.push(`${step.name}: (${Date.now() - t0} ms)`);
  }

  before(async () => {
    host = await BuilderHost.start({ user: "admin", log: (l) => console.log(`      ${l}`) });
    plantSecrets(host);
    state = sshBakeState(ROOT, host.target(), { stack: "test", region: "eu-west-1", sshTimeout: 30 });
    const arch = process.arch === "arm64" ? "arm64" : "x86_64";
    state.payloadDir = await preparePayload(ROOT, arch, defaultCacheDir(ROOT));
    try {
      await runStep(stepWaitForSsh);
      await runStep(stepUpload);
      await runStep(stepProvision);
      // Idempotent: a second run over the first changes nothing and fails nowhere.
      await runStep(stepProvision);
      await runStep(stepValidate);
      await runStep(stepClean);
    } catch (e) {
      console.log(lines.map((l) => `      ${l}`).join("\n"));
      console.log(`      sshd:\n${host.sshdLog}`);
      throw e;
    }
  });

  after(async () => {
    for (const step of ran.reverse()) await step.cleanup?.(state, recordingContext(step.name, lines));
    await host?.stop();
  });

  it("streams each provisioning script with a step counter", () => {
    const scripts = provisionScripts(state.payloadDir!);
    const n = scripts.length;
    const counters = lines.filter((l) => /^provision: \[\d+\/\d+\] [a-z]/.test(l) && !/done in/.test(l));
    assert.deepEqual(counters, [...scripts, ...scripts].map((s, i) => `provision: [${(i % n) + 1}/${n}] ${s.title}`), "each script, twice (the idempotence run)");
    assert.ok(counters.includes(`provision: [1/${n}] create the kiln-worker system user`), counters.join("\n"));
    assert.ok(lines.includes("provision: user kiln-worker already exists"), "the second run found the user in place");
    assert.ok(lines.some((l) => /^provision: skipped: amazon-cloudwatch-agent is not in this image's apt sources/.test(l)));
    assert.ok(lines.includes("wait-for-ssh: cloud-init is not installed on this host: nothing to wait for"));
  });

  it("uploads the payload exactly, modes included", () => {
    const files = listPayloadFiles(state.payloadDir!);
    assert.ok(files.includes("node/bin/node") && files.includes("worker/kiln-worker.js") && files.includes("scripts/clean.sh"), files.join(" "));
    const installed = host.path(INSTALL.bundleDir);
    for (const file of files.filter((f) => f.startsWith("worker/"))) {
      const local = fs.readFileSync(path.join(state.payloadDir!, file));
      const remote = fs.readFileSync(path.join(installed, file.slice("worker/".length)));
      assert.ok(local.equals(remote), `${file} differs on the host`);
    }
    assert.equal(fs.statSync(path.join(installed, "kiln-worker.js")).mode & 0o777, 0o755);
    assert.equal(fs.statSync(host.path(INSTALL.node)).mode & 0o777, 0o755);
    assert.equal(fs.statSync(path.join(installed, "systemd", "kiln-worker.service")).uid, 0);
  });

  it("runs the bundle with the uploaded Node runtime", () => {
    const version = host.chroot([INSTALL.node, "--version"]);
    assert.equal(version.stdout.trim(), `v${NODE_VERSION}`);
    const help = host.chroot([INSTALL.node, `${INSTALL.bundleDir}/kiln-worker.js`, "--help"]);
    assert.equal(help.status, 0, help.stderr);
    assert.match(help.stdout, /^usage: kiln-worker <command>/);
    assert.ok(lines.includes("validate: worker self-check passed"), lines.join("\n"));
  });

  it("creates the worker's system user and directories", () => {
    const passwd = host.chroot(["getent", "passwd", INSTALL.user]).stdout.trim().split(":");
    assert.equal(passwd[5], INSTALL.stateDir);
    assert.match(passwd[6], /nologin$/);
    assert.ok(Number(passwd[2]) < 1000, `a system uid, got ${passwd[2]}`);
    const stateDir = fs.statSync(host.path(INSTALL.stateDir));
    assert.equal(stateDir.uid, Number(passwd[2]));
    assert.equal(stateDir.mode & 0o777, 0o750);
  });

  it("installs the units and enables the worker and its env unit for multi-user.target", () => {
    for (const unit of ["kiln-worker.service", "kiln-worker-env.service", "kiln-worker-failed@.service"]) {
      assert.equal(fs.readFileSync(host.path(`/etc/systemd/system/${unit}`), "utf8"), fs.readFileSync(path.join(ROOT, "worker", "systemd", unit), "utf8"));
    }
    for (const unit of ["kiln-worker.service", "kiln-worker-env.service"]) {
      const link = host.path(`/etc/systemd/system/multi-user.target.wants/${unit}`);
      assert.ok(fs.lstatSync(link).isSymbolicLink(), `${unit} enabled`);
      assert.equal(fs.readlinkSync(link), `/etc/systemd/system/${unit}`);
    }
    assert.ok(!fs.existsSync(host.path("/etc/systemd/system/multi-user.target.wants/kiln-worker-failed@.service")), "started by OnFailure= only");
  });

  it("systemd-analyze verify --root on the provisioned root: exit 0 and not one warning", () => {
    const r = spawnSync("systemd-analyze", ["verify", `--root=${host.root}`, "kiln-worker.service", "kiln-worker-env.service", "kiln-worker-failed@kiln-worker.service"], { encoding: "utf8", env: ENV });
    assert.ifError(r.error);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, "");
    assert.ok(lines.some((l) => /^validate: systemd-analyze verify: .* clean$/.test(l)), "and validate ran it on the host itself");
  });

  it("bounds the journal with a drop-in", () => {
    const conf = fs.readFileSync(host.path("/etc/systemd/journald.conf.d/60-kiln.conf"), "utf8");
    assert.match(conf, /^\[Journal\]$/m);
    assert.match(conf, /^SystemMaxUse=\S+$/m);
  });

  it("removes every planted secret: keys, histories, credentials, env files", () => {
    for (const p of [
      "/root/.bash_history",
      "/root/.ssh/authorized_keys",
      "/root/.ssh/id_ed25519",
      "/root/.aws/credentials",
      "/home/admin/.ssh/authorized_keys",
      "/home/admin/.bash_history",
      "/home/deploy/.ssh/authorized_keys",
      "/home/deploy/.aws",
      "/etc/kiln/worker.env",
      "/etc/kiln/instance.env",
      INSTALL.sizingDropIn,
      "/var/lib/dbus/machine-id",
      "/var/lib/cloud/instances",
      `${INSTALL.stateDir}/scratch.tmp`,
    ]) {
      assert.ok(!fs.existsSync(host.path(p)), `${p} is still there`);
    }
    const hostKeys = fs.readdirSync(host.path("/etc/ssh")).filter((f) => f.startsWith("ssh_host_"));
    assert.deepEqual(hostKeys, [], "SSH host keys");
  });

  it("empties machine-id, logs, package caches and temporary files", () => {
    assert.equal(fs.statSync(host.path("/etc/machine-id")).size, 0, "machine-id exists and is empty");
    const logs = spawnSync("find", [host.path("/var/log"), "-type", "f", "-size", "+0"], { encoding: "utf8" }).stdout.trim();
    assert.equal(logs, "", "non-empty log files");
    assert.ok(!fs.existsSync(host.path("/var/log/secret.log.1")), "rotated logs removed");
    assert.deepEqual(fs.readdirSync(host.path("/var/log/journal/0123456789abcdef0123456789abcdef")), [], "journal files removed");
    assert.deepEqual(fs.readdirSync(host.path("/tmp")), []);
    assert.deepEqual(fs.readdirSync(host.path("/var/tmp")), [], "the uploaded payload too");
    assert.deepEqual(fs.readdirSync(host.path("/var/cache/apt/archives")).filter((f) => f.endsWith(".deb")), []);
  });

  it("closes the session, and the host accepts no login afterwards", async () => {
    assert.equal(state.connection, undefined);
    await assert.rejects(
      connectBefore(host.target(), { deadline: Date.now() + 3_000, signal: new AbortController().signal, retryDelayMs: 500 }),
      /no SSH on 127\.0\.0\.1:\d+/,
    );
  });
});

/** What a builder may carry that no launched copy may inherit. */
function plantSecrets(host: BuilderHost): void {
  const put = (p: string, text: string, mode = 0o600) => {
    fs.mkdirSync(path.dirname(host.path(p)), { recursive: true });
    fs.writeFileSync(host.path(p), text, { mode });
  };
  spawnSync("chroot", [host.root, "useradd", "--create-home", "deploy"]);
  put("/root/.bash_history", "aws configure set aws_secret_access_key hunter2\n");
  put("/root/.ssh/authorized_keys", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPlanted root@laptop\n");
  put("/root/.ssh/id_ed25519", "-----BEGIN OPENSSH PRIVATE KEY-----\nplanted\n-----END OPENSSH PRIVATE KEY-----\n");
  put("/root/.aws/credentials", "[default]\naws_secret_access_key = hunter2\n");
  put("/home/admin/.bash_history", "sudo -i\n");
  put("/home/deploy/.ssh/authorized_keys", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPlanted deploy@ci\n");
  put("/home/deploy/.aws/config", "[default]\nregion = eu-west-1\n");
  put("/etc/kiln/worker.env", "SQS_QUEUE_URL=https://sqs.eu-west-1.amazonaws.com/123456789012/prod\nDB_PASSWORD=hunter2\n");
  put("/etc/kiln/instance.env", "KILN_SSM_PREFIX=/kiln/prod/worker/\n");
  put(INSTALL.sizingDropIn, "[Service]\nMemoryMax=3G\n", 0o644);
  put("/var/lib/dbus/machine-id", "0123456789abcdef0123456789abcdef\n", 0o644);
  put("/var/lib/cloud/instances/i-0123456789abcdef0/user-data.txt", "#cloud-config\n");
  put(`${INSTALL.stateDir}/scratch.tmp`, "half-processed upload\n");
  put("/var/log/secret.log", "token=hunter2\n", 0o644);
  put("/var/log/secret.log.1", "token=hunter1\n", 0o644);
  put("/var/log/journal/0123456789abcdef0123456789abcdef/system.journal", "journal bytes", 0o640);
  put("/tmp/upload-1234.part", "customer file\n");
  put("/var/tmp/.hidden", "dotfile\n");
  put("/var/cache/apt/archives/planted_1.0_amd64.deb", "deb\n", 0o644);
}
