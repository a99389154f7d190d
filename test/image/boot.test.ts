import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { bakeSettings } from "../../ami/settings";
import { parseStackConfig } from "../../infra/config";
import { readStackFile } from "../../infra/stack-file";
import { renderUserData } from "../../infra/user-data";
import { workerVariables } from "../../infra/worker-variables";
import { INSTALL, INSTANCE_ENV_FILE, WORKER_ENV_FILE } from "../../worker/contract";
import { LoopbackNetwork } from "../support/loopback-network";
import { BootedMachine, Overlay } from "../support/nspawn";
import { REPO } from "../support/pulumi-harness";
import { eventually } from "../support/sqs";
import { bakeImage, BakedImage, saveRandomSeedAtShutdown, writeLaunch } from "./baked-image";
import { StackCloud } from "./stack-cloud";

const STACK = "prod";
const cfg = parseStackConfig(STACK, readStackFile(REPO, STACK).raw);
const SECRET = { OPENSEARCH_PASSWORD: "boot-test-opensearch-password" };

/**
 * EC2 Image Builder's test phase, here: the prod stack's image is baked on a booted builder (the
 * real builder-side steps over SSH), then instances boot from it under systemd-nspawn with loopback
 * only, user data through cloud-init, and the stack's cloud on 127.0.0.1 (moto for SSM, Auto Scaling
 * and CloudWatch; the embedded SQS; an IMDSv2 stand-in with the role's credentials).
 */
describe("the prod image, baked on a booted builder and booted as the fleet's instances", function () {
  this.timeout(20 * 60_000);
  let dir: string;
  let cloud: StackCloud;
  let network: LoopbackNetwork;
  let baked: BakedImage;
  const overlays: Overlay[] = [];
  const machines: BootedMachine[] = [];

  before(async function () {
    if (process.getuid?.() !== 0) throw new Error("the image tests run as root: they mount overlays and boot with systemd-nspawn");
    if (spawnSync("systemd-nspawn", ["--version"]).error) throw new Error("systemd-nspawn is not installed: .ci/run installs it (apt-get install systemd-container)");
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "kiln-image-"));
    cloud = await StackCloud.start(STACK, cfg.region, { visibilityTimeout: cfg.visibilityTimeout, maxReceiveCount: cfg.maxReceiveCount });
    network = await LoopbackNetwork.start(path.join(dir, "net"), {
      addresses: ["169.254.169.254/32"],
      inbound: [
        { name: "imds", host: "169.254.169.254", port: 80, to: cloud.imdsPort },
        { name: "moto", host: "127.0.0.1", port: cloud.motoPort, to: cloud.motoPort },
        { name: "sqs", host: "127.0.0.1", port: cloud.sqsPort, to: cloud.sqsPort },
      ],
      outbound: [{ name: "ssh", host: "127.0.0.1", port: 22 }],
    });
    baked = await bakeImage({ dir, network, settings: bakeSettings(REPO, STACK), log: (l) => process.env.KILN_TEST_VERBOSE && console.log(`      ${l}`) });
  });

  after(async () => {
    for (const m of machines) await m.kill();
    for (const o of overlays) o.unmount();
    baked?.builder.unmount();
    await network?.stop();
    await cloud?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  /** Boots a new instance of the image with the stack's environment in SSM, `overrides` on top. */
  async function launch(name: string, overrides: Record<string, string> = {}, files: Record<string, string> = {}) {
    const { groupName, instanceId } = await cloud.launchInstance();
    const vars = workerVariables(cfg, { queueUrl: cloud.queue.url, groupName, logGroupName: `/kiln/${STACK}/worker` }) as Record<string, string>;
    await cloud.putEnvironment({ ...vars, ...overrides }, SECRET);
    const overlay = Overlay.mount(path.join(dir, name), [baked.image, baked.base]);
    overlays.push(overlay);
    const userData = renderUserData({ ssmPrefix: cloud.prefix, region: cfg.region, envDigest: `boot-test-${name}` });
    writeLaunch(overlay.merged, { instanceId, userData });
    // What resolves AWS's endpoints to the stand-ins: every unit's environment, none of kiln's files.
    files["/etc/systemd/system.conf.d/90-kiln-test-endpoints.conf"] =
      `[Manager]\nDefaultEnvironment="AWS_ENDPOINT_URL=http://127.0.0.1:${cloud.motoPort}" "AWS_ENDPOINT_URL_SQS=http://127.0.0.1:${cloud.sqsPort}"\n`;
    for (const [p, text] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(overlay.path(p)), { recursive: true });
      fs.writeFileSync(overlay.path(p), text);
    }
    const machine = await BootedMachine.boot({ root: overlay.merged, netns: network.path });
    machines.push(machine);
    return { machine, overlay, instanceId, userData };
  }

  const messages = (unit: string) => async (m: BootedMachine) => (await m.journal(unit)).map((e) => e.MESSAGE ?? "");

  describe("the bake", () => {
    it("checked the stack's own app on the builder, with the stack's settings", () => {
      const mode = `WORKER_APP=${cfg.workerApp}`;
      assert.ok(baked.log.some((l) => l.startsWith("validate: self-check as kiln-worker with the stack's ") && l.includes(mode)), baked.log.join("\n"));
      assert.ok(baked.log.includes("validate: worker self-check passed"));
      assert.ok(fs.existsSync(path.join(baked.image, "opt/file-processor/venv/bin/python3")), "the app's venv is in the image");
    });

    it("found no secret in what the image holds", () => {
      assert.ok(baked.log.some((l) => /^clean: secret scan: 0 finding\(s\) in \d+ text files/.test(l)), baked.log.filter((l) => l.startsWith("clean:")).join("\n"));
    });

    it("left nothing the builder's own shutdown wrote: no random seed, no journal, no login record", () => {
      const root = baked.builder.merged;
      assert.equal(fs.existsSync(path.join(root, "var/lib/systemd/random-seed")), false, "systemd-random-seed saved a seed at shutdown, and it stayed");
      const journals = spawnSync("find", [path.join(root, "var/log/journal"), "-type", "f"], { encoding: "utf8" }).stdout.trim();
      assert.equal(journals, "", "journal files written after the clean");
      for (const f of ["var/log/wtmp", "var/log/btmp", "var/log/lastlog"]) {
        const p = path.join(root, f);
        if (fs.existsSync(p)) assert.equal(fs.statSync(p).size, 0, `${f} holds records`);
      }
      assert.equal(fs.readFileSync(path.join(root, "etc/machine-id"), "utf8"), "");
      assert.equal(fs.existsSync(path.join(root, "run/kiln-clean")), false);
      assert.deepEqual(fs.readdirSync(path.join(root, "etc/ssh")).filter((f) => f.startsWith("ssh_host_")), []);
    });
  });

  describe("an instance with the stack's environment", () => {
    let machine: BootedMachine;
    let overlay: Overlay;
    let userData: string;

    before(async () => ({ machine, overlay, userData } = await launch("instance")));

    it("reads the SSM prefix and region from its user data", async () => {
      const written = /content: \|\n((?: {6}.*\n)+)/.exec(userData)?.[1].replace(/^ {6}/gm, "");
      assert.ok(written, userData);
      assert.equal(fs.readFileSync(overlay.path(INSTANCE_ENV_FILE), "utf8"), written, "cloud-init wrote instance.env from the user data");
      assert.match(written, new RegExp(`^KILN_SSM_PREFIX=${cloud.prefix}$`, "m"));
      assert.match(written, new RegExp(`^AWS_REGION=${cfg.region}$`, "m"));
      assert.equal(await machine.property("kiln-worker-env.service", "Result"), "success");
      const env = await messages("kiln-worker-env.service")(machine);
      assert.ok(env.some((m) => m.includes("wrote the worker environment and sizing")), env.join("\n"));
    });

    it("writes the environment from SSM, SecureStrings decrypted, to a 0600 file only root reads", () => {
      const st = fs.statSync(overlay.path(WORKER_ENV_FILE));
      assert.equal(st.mode & 0o777, 0o600);
      assert.equal(st.uid, 0);
      const text = fs.readFileSync(overlay.path(WORKER_ENV_FILE), "utf8");
      assert.ok(text.includes(`SQS_QUEUE_URL="${cloud.queue.url}"`), "the queue from SSM");
      assert.ok(text.includes(`WORKER_APP="${cfg.workerApp}"`), "the stack's app");
      assert.ok(text.includes(`OPENSEARCH_PASSWORD="${SECRET.OPENSEARCH_PASSWORD}"`), "the SecureString, decrypted with the stack's KMS key");
      assert.match(fs.readFileSync(overlay.path(INSTALL.sizingDropIn), "utf8"), /^MemoryMax=\d+M$/m);
    });

    it("starts the stack's app as the worker's user and processes the queue", async () => {
      await machine.waitFor("kiln-worker.service active", async () => (await machine.property("kiln-worker.service", "ActiveState")) === "active");
      const bodies = Array.from({ length: 12 }, (_, i) => JSON.stringify({ bucket: "cis-filesearch-storage", key: `uploads/boot-${i}.pdf`, work_ms: 20 }));
      await cloud.sqs.send(cloud.queue.url, bodies);
      const drained = await eventually(async () => {
        const d = await cloud.sqs.depth(cloud.queue.url);
        return d.visible === 0 && d.inFlight === 0;
      }, 120_000, 500);
      assert.ok(drained, `messages left: ${JSON.stringify(await cloud.sqs.depth(cloud.queue.url))}\n${(await messages("kiln-worker.service")(machine)).join("\n")}`);
      assert.equal((await cloud.sqs.depth(cloud.queue.dlqUrl)).visible, 0, "nothing failed into the DLQ");
      const ps = await machine.exec(["ps", "-o", "user=,args=", "-C", "python3"]);
      assert.match(ps.stdout, new RegExp(`^kiln-wo\\S*\\s+${cfg.workerApp!.replace(/[/.]/g, "\\$&")}`, "m"), ps.stdout);
      assert.equal(await machine.property("kiln-worker.service", "NRestarts"), "0");
    });

    it("drains on a stop: the message in flight finishes, none is lost or left in flight", async () => {
      // The control for the builder's seal: a machine without it keeps the seed saved at shutdown.
      await saveRandomSeedAtShutdown(machine);
      await cloud.sqs.send(cloud.queue.url, [1, 2, 3].map((i) => JSON.stringify({ key: `uploads/slow-${i}.pdf`, work_ms: 3000 })));
      assert.ok(await eventually(async () => (await cloud.sqs.depth(cloud.queue.url)).inFlight === 1, 30_000, 100), "a message in flight");
      await machine.poweroff();
      assert.ok(fs.existsSync(overlay.path("/var/lib/systemd/random-seed")), "an instance saves its own seed as it stops");
      const d = await cloud.sqs.depth(cloud.queue.url);
      assert.equal(d.inFlight, 0, "released or done, never held by a stopped worker");
      // 3 if the drain had given up on the message in flight, 0 if the stop had waited for the queue.
      assert.ok(d.visible >= 1 && d.visible <= 2, `the message in flight was finished and deleted, the waiting ones kept: ${d.visible} visible`);
      // The worker exited 0 within TimeoutStopSec: systemd neither killed it nor saw it fail.
      const journal = spawnSync("journalctl", ["--directory", overlay.path("/var/log/journal"), "--no-pager", "-o", "cat", "-u", "kiln-worker.service"], { encoding: "utf8" }).stdout;
      assert.match(journal, /kiln-worker\.service: Deactivated successfully/, journal);
      assert.doesNotMatch(journal, /timed out|Killing|Failed with result/, journal);
    });
  });

  /** The report kiln-worker-failed@kiln-worker.service made, once it has finished. */
  async function failureReport(machine: BootedMachine): Promise<string[]> {
    const unit = "kiln-worker-failed@kiln-worker.service";
    await machine.waitFor(
      `${unit} finished`,
      async () => (await machine.property(unit, "ExecMainExitTimestampMonotonic")) !== "0" && !/^(activating|active)$/.test(await machine.property(unit, "ActiveState")),
      120_000,
    );
    assert.equal(await machine.property(unit, "Result"), "success", (await messages(unit)(machine)).join("\n"));
    return messages(unit)(machine);
  }

  describe("when the worker fails", () => {
    it("a configuration error (exit 78): reported, the worker not restarted, the instance not marked unhealthy", async () => {
      const failuresBefore = await cloud.workerFailures();
      const { machine, instanceId } = await launch("config-error", { LOG_LEVEL: "chatty" });
      const report = await failureReport(machine);
      assert.ok(report.some((m) => m.includes("systemd gave up on kiln-worker.service (exit-code, exited 78): reporting only")), report.join("\n"));
      assert.equal(await machine.property("kiln-worker.service", "ExecMainStatus"), "78");
      assert.equal(await machine.property("kiln-worker.service", "NRestarts"), "0");
      assert.equal(await cloud.workerFailures(), failuresBefore + 1, "one WorkerFailure data point");
      assert.equal((await cloud.instanceHealth(instanceId))?.toUpperCase(), "HEALTHY");
      await machine.poweroff();
    });

    it("a crash loop: reported, and the instance marked unhealthy for Auto Scaling to replace", async () => {
      const failuresBefore = await cloud.workerFailures();
      // A crash at every start (exit 1). RestartSec shortened so the loop ends in seconds; the start
      // limit itself (5 starts in 300 s) is the unit's own.
      const { machine, instanceId } = await launch(
        "crash-loop",
        { NODE_OPTIONS: "--require=/nonexistent/kiln-boot-test-crash.js" },
        { "/etc/systemd/system/kiln-worker.service.d/90-kiln-test-restart.conf": "[Service]\nRestartSec=1s\n" },
      );
      const report = await failureReport(machine);
      // systemd 252 keeps the last run's result (exit-code) when the start limit ends the loop.
      assert.ok(report.some((m) => /systemd gave up on kiln-worker\.service \((exit-code|start-limit-hit), exited 1\): marking this instance unhealthy/.test(m)), report.join("\n"));
      assert.ok(report.some((m) => m.includes(`marked ${instanceId} unhealthy`)), report.join("\n"));
      assert.equal(await cloud.workerFailures(), failuresBefore + 1);
      assert.equal((await cloud.instanceHealth(instanceId))?.toUpperCase(), "UNHEALTHY");
      await machine.poweroff();
    });
  });
});
