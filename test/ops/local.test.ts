import { strict as assert } from "node:assert";
import { ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ROOT } from "../../local/plan";
import { eventually, sleep } from "../support/sqs";
import { kiln } from "./support/run-kiln";

/**
 * `npm run local` as a user starts it, in its own process group as a terminal would, and the kiln
 * commands run against it: found by themselves (the fleet's record in KILN_LOCAL_DIR), or --local.
 */
describe("kiln against a running npm run local fleet", function () {
  this.timeout(180_000);
  let dir: string;
  let fleet: ChildProcess;
  let out = "";
  let exited: Promise<number | null>;
  let env: NodeJS.ProcessEnv;

  const run = (argv: string[], o: { signal?: AbortSignal } = {}) => kiln([...argv, "--stack", "dev"], { env, signal: o.signal });
  const status = async () => (await run(["status", "--json"])).json();

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "kiln-ops-local-"));
    env = { ...process.env, KILN_LOCAL_DIR: path.join(dir, "state") };
    fleet = spawn("npm", ["run", "-s", "local", "--", "--keep-running", "--messages", "400", "--fail-rate", "0.05", "--plain", "--env", "DEMO_AVG_MS=60", "--log-file", path.join(dir, "workers.log")], {
      cwd: ROOT,
      env,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    });
    fleet.stdout!.on("data", (d) => (out += d));
    fleet.stderr!.on("data", (d) => (out += d));
    exited = new Promise((resolve) => fleet.once("exit", (code) => resolve(code)));
    assert.ok(await eventually(() => fs.existsSync(path.join(dir, "state", "dev.json")), 60_000, 200), out);
  });

  after(async () => {
    if (fleet.exitCode === null) {
      process.kill(-fleet.pid!, "SIGINT");
      await sleep(700);
      if (fleet.exitCode === null) process.kill(-fleet.pid!, "SIGINT");
      await Promise.race([exited, sleep(10_000)]);
      if (fleet.exitCode === null) process.kill(-fleet.pid!, "SIGKILL");
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("status finds the running fleet by itself: queue, rates from its own counts, workers", async () => {
    assert.ok(await eventually(async () => (await status()).throughput.processed5 > 0, 30_000, 500), out);
    const s = await status();
    assert.equal(s.kind, "local");
    assert.match(s.where, /^local fleet of stack dev \(npm run local, pid \d+; --aws for the deployed stack\)$/);
    assert.deepEqual([s.group.min, s.group.max], [0, 2]);
    assert.ok(s.group.instances.every((w: { id: string }) => /^w\d+$/.test(w.id)));
    assert.match(s.queue.url, /\/kiln-dev$/);
    const human = await run(["status", "--local"]);
    assert.match(human.out, /^ {2}instances +\d desired, \d in service/m);
  });

  it("scale sets the fleet's desired count within its bounds; pause drains it to 0 and resume brings it back", async () => {
    const r = await run(["scale", "--desired", "1"]);
    assert.equal(r.code, 0, r.err);
    assert.ok(await eventually(async () => (await status()).group.inService === 1, 20_000, 300));
    const above = await run(["scale", "--desired", "5"]);
    assert.equal(above.code, 2);
    assert.match(above.err, /^kiln: desired 5 is outside the fleet's 0 to 2 workers/);

    assert.equal((await run(["pause"])).code, 0);
    assert.ok(await eventually(async () => (await status()).group.instances.length === 0, 30_000, 300), out);
    await sleep(2_000);
    const paused = await status();
    assert.ok(paused.group.paused);
    await sleep(2_000);
    assert.equal((await status()).eta.messages, paused.eta.messages, "nothing is taken while paused");
    assert.match(out, /paused: \d → 0 workers, draining \(kiln pause; kiln resume starts them again\)/);
    assert.doesNotMatch(out, /stopped \(killed by/, "drained workers are not reported as killed");

    assert.equal((await run(["resume"])).code, 0);
    assert.ok(await eventually(async () => (await status()).group.inService >= 1, 20_000, 300));
    assert.match(out, /resumed: 0 → \d workers? \(kiln resume\)/);
  });

  it("dlq show gives each dead letter's last error from the fleet's log; redrive moves them back", async () => {
    assert.ok(await eventually(async () => (await status()).dlq.visible >= 3, 60_000, 500), out);
    const shown = await run(["dlq", "show", "--json", "-n", "50"]);
    assert.equal(shown.code, 0, shown.err);
    const letters = shown.json().messages as { body: string; lastError: string }[];
    assert.ok(letters.length >= 3);
    for (const l of letters) {
      assert.match(l.body, /^\{"demo":\d+,"fail":true\}$/);
      assert.equal(l.lastError, "the message asked to fail (demo)");
    }
    const moved = await run(["dlq", "redrive", "--json"]);
    assert.equal(moved.code, 0, moved.err);
    assert.ok(moved.json().moved >= letters.length);
  });

  it("logs by level and worker, and smoke sees the worker's processed line", async () => {
    const warn = await run(["logs", "--level", "warn", "--since", "10m", "-n", "5"]);
    assert.equal(warn.code, 0, warn.err);
    assert.ok(warn.out.trim().split("\n").every((l) => / {2}warn {3}w\d+ {2}message failed; it returns to the queue {2}messageId=\S+ err="the message asked to fail \(demo\)"$/.test(l)), warn.out);
    const w1 = await run(["logs", "--instance", "w1", "--json", "-n", "20"]);
    assert.ok(w1.out.trim().split("\n").every((l) => JSON.parse(l).source === "w1"));

    const smoke = await run(["smoke", "--timeout", "60s", "--json"]);
    assert.equal(smoke.code, 0, smoke.out + smoke.err);
    assert.deepEqual([smoke.json().ok, smoke.json().evidence], [true, "log"]);
  });

  it("eta from the fleet's own rate, doctor's report, and rollout is not a local thing", async () => {
    const eta = await run(["eta", "--backlog", "1000", "--json"]);
    assert.equal(eta.code, 0, eta.err);
    assert.match(eta.json().rateFrom, /^measured: .* over 15 min on \d workers? \(local\)$/);
    const doctor = await run(["doctor", "--json"]);
    assert.equal(doctor.code, 0, doctor.out);
    assert.deepEqual(doctor.json().checks.map((c: { name: string }) => c.name).slice(0, 3), ["intake", "latency", "dead letters"]);
    const rollout = await run(["rollout", "status"]);
    assert.equal(rollout.code, 2);
    assert.match(rollout.err, /the local fleet runs this checkout's worker: there is no rollout/);
  });

  it("one Ctrl-C to the terminal's process group: the fleet drains, npm exits 0, the record goes", async () => {
    process.kill(-fleet.pid!, "SIGINT");
    assert.equal(await exited, 0, out);
    assert.match(out, /^summary \(stack dev\): Ctrl-C$/m);
    assert.doesNotMatch(out, /killed by SIG/);
    assert.equal(fs.existsSync(path.join(dir, "state", "dev.json")), false);
    const gone = await run(["status", "--local"]);
    assert.equal(gone.code, 4);
    assert.match(gone.err, /no local fleet of stack dev is running/);
  });

  it("npm run local -- --handler ./missing.js stops at once with one line, exit 2", async () => {
    const child = spawn("npm", ["run", "-s", "local", "--", "--handler", "./missing.js"], { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
    let text = "";
    child.stdout!.on("data", (d) => (text += d));
    child.stderr!.on("data", (d) => (text += d));
    const code = await new Promise((resolve) => child.once("exit", resolve));
    assert.equal(code, 2);
    assert.equal(text.trim(), `kiln local: --handler: ${path.join(ROOT, "missing.js")} does not exist`);
  });
});
