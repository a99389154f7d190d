import { strict as assert } from "node:assert";
import { ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { ROOT } from "../../local/plan";
import { eventually, sleep } from "../support/sqs";
import { isAlive, scratch, workerLog } from "./support";

interface CliRun {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
  logFile: string;
}

describe("npm run local, as a process (local/cli.ts)", function () {
  let tmp: ReturnType<typeof scratch>;
  let runs: CliRun[] = [];

  beforeEach(() => {
    tmp = scratch();
    runs = [];
  });

  afterEach(async () => {
    for (const run of runs) {
      if (run.child.exitCode === null && run.child.signalCode === null) {
        // Two signals force the fleet, which kills its workers; SIGKILL if even that hangs.
        run.child.kill("SIGTERM");
        await sleep(600);
        run.child.kill("SIGTERM");
        const gone = await Promise.race([run.exited.then(() => true), sleep(5_000).then(() => false)]);
        if (!gone) run.child.kill("SIGKILL");
      }
      for (const pid of workerPids(run)) if (isAlive(pid)) process.kill(pid, "SIGKILL");
    }
    tmp.remove();
  });

  function cli(args: string[]): CliRun {
    const logFile = path.join(tmp.dir, `workers-${runs.length}.log`);
    const child = spawn(process.execPath, ["--require", require.resolve("tsx/cjs"), path.join("local", "cli.ts"), "--log-file", logFile, ...args], {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout!.on("data", (d) => (out += d));
    child.stderr!.on("data", (d) => (err += d));
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    const run = { child, stdout: () => out, stderr: () => err, exited, logFile };
    runs.push(run);
    return run;
  }

  const workerPids = (run: CliRun) => workerLog(run.logFile).flatMap((l) => (l.msg === "worker started" && l.pid ? [l.pid] : []));
  /** The fleet's own complaints; the AWS SDK's Node 20 notice also goes to stderr. */
  const complaints = (run: CliRun) => run.stderr().split("\n").filter((l) => l.startsWith("kiln local:"));

  it("runs a demo to the end with plain status lines when stdout is a pipe, then exits 0", async () => {
    const run = cli(["--messages", "30", "--fail-rate", "0.1", "--env", "DEMO_AVG_MS=20", "--env", "WORKER_RETRY_DELAY=0"]);
    assert.equal(await run.exited, 0, run.stdout() + run.stderr());

    const out = run.stdout();
    assert.match(out, /^kiln local: stack dev /m);
    assert.match(out, /^\[\s*[\d.]+ s\] backlog \d+ \| in flight \d+ \| processed \d+ \(\d+\/min\) \| DLQ \d+ \| workers \d+\/\d+/m);
    assert.match(out, /^\[\s*[\d.]+ s\] scale out from zero: 0 → 1 worker \(the stack's step policy starts one when messages arrive; backlog \d+\)$/m);
    assert.match(out, /^summary \(stack dev\): every message handled$/m);
    assert.match(out, /^ {2}processed {7}27$/m);
    assert.match(out, /^ {2}failed → DLQ {4}3 /m);
    assert.doesNotMatch(out, /\x1b\[/);
    assert.deepEqual(complaints(run), []);
    const pids = workerPids(run);
    assert.ok(pids.length > 0);
    assert.deepEqual(pids.filter(isAlive), [], "no worker left");
  });

  it("drains on Ctrl-C (SIGINT): prints the summary, leaves nothing in flight and exits 0", async () => {
    const run = cli(["--keep-running", "--messages", "200", "--fail-rate", "0", "--env", "DEMO_AVG_MS=300"]);
    assert.ok(await eventually(() => /processed [1-9]/.test(run.stdout()), 20_000, 100), run.stdout() + run.stderr());
    assert.match(run.stdout(), /send your own messages with\n.*aws sqs send-message --endpoint-url http:\/\/127\.0\.0\.1:\d+/);
    run.child.kill("SIGINT");
    assert.equal(await run.exited, 0, run.stdout() + run.stderr());

    const out = run.stdout();
    assert.match(out, /^summary \(stack dev\): Ctrl-C$/m);
    const processed = Number(/^ {2}processed {7}(\d+)$/m.exec(out)?.[1]);
    const left = /^ {2}left in queue {3}(\d+) \((\d+) visible, 0 in flight, 0 delayed\)/m.exec(out);
    assert.ok(left, `nothing left in flight:\n${out}`);
    assert.equal(processed + Number(left[2]), 200, "every message processed or still visible");
    assert.match(out, /^\[\s*[\d.]+ s\] Ctrl-C: draining \d workers? \(Ctrl-C again kills them\)$/m);
    const log = workerLog(run.logFile);
    assert.ok(log.filter((l) => l.msg === "stopped").every((l) => l.exitCode === 0));
    assert.deepEqual(workerPids(run).filter(isAlive), []);
  });

  it("kills the workers on a second Ctrl-C and exits 130", async () => {
    // Every message takes a minute: the demo handler's random times (0 to 2 x DEMO_AVG_MS) let the
    // first Ctrl-C's drain finish before the second one now and then.
    const handler = path.join(tmp.dir, "minute.js");
    fs.writeFileSync(handler, "exports.handle = () => new Promise((r) => setTimeout(r, 60_000));\n");
    const run = cli(["--keep-running", "--messages", "20", "--fail-rate", "0", "--handler", handler]);
    assert.ok(await eventually(() => /in flight [1-9]/.test(run.stdout()), 20_000, 100), run.stdout() + run.stderr());
    run.child.kill("SIGINT");
    await sleep(800);
    run.child.kill("SIGINT");
    assert.equal(await run.exited, 130, run.stdout() + run.stderr());
    assert.match(run.stdout(), /forced: killed \d worker/);
    assert.deepEqual(workerPids(run).filter(isAlive), []);
  });

  it("rejects a bad flag with one line naming it, exit 2", async () => {
    const run = cli(["--mesages", "10"]);
    assert.equal(await run.exited, 2);
    assert.deepEqual(complaints(run), ["kiln local: unknown flag --mesages (see --help)"]);
    assert.equal(run.stdout(), "");
  });
});
