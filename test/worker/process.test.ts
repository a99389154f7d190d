import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { EXIT } from "../../worker/contract";
import { eventually, TestSqs } from "../support/sqs";
import { ensureBundle, FLAVOURS, Flavour, RECORD_HANDLER, recordFile, startWorker, WorkerProcess } from "../support/worker-process";

/** The worker as systemd runs it: a process, its exit code and its stdout, as the bundle and from sources. */
for (const flavour of Object.keys(FLAVOURS) as Flavour[]) {
  describe(`kiln-worker as a process (${flavour})`, function () {
    this.timeout(60_000);
    let sqs: TestSqs;
    let n = 0;
    const started: WorkerProcess[] = [];

    before(async () => {
      if (flavour === "bundle") await ensureBundle();
      sqs = await TestSqs.start();
    });
    after(async () => sqs.stop());
    afterEach(async () => {
      for (const w of started.splice(0)) {
        if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill("SIGKILL");
        await w.exited;
      }
    });

    const run = (env: Record<string, string>, args?: string[]) => {
      const w = startWorker(flavour, env, args);
      started.push(w);
      return w;
    };

    if (flavour === "bundle") {
      it("is one self-contained file: no node_modules next to it, units and example handlers beside it", async () => {
        const bundle = FLAVOURS.bundle[0];
        const dir = path.dirname(bundle);
        assert.equal(fs.existsSync(path.join(dir, "node_modules")), false);
        assert.ok(fs.statSync(bundle).mode & 0o111, "executable");
        assert.match(fs.readFileSync(bundle, "utf8").slice(0, 40), /^#!\/usr\/bin\/env node/);
        for (const unit of ["kiln-worker.service", "kiln-worker-env.service", "kiln-worker-failed@.service"]) {
          assert.ok(fs.existsSync(path.join(dir, "systemd", unit)), unit);
        }
        // Resolving a package from the bundle's directory must not be what makes it work.
        const w = run({ NODE_PATH: "/nonexistent" }, ["--help"]);
        assert.equal(await w.exited, 0);
        assert.match(w.stdout(), /run \[--self-check\][\s\S]*env[\s\S]*report-failure/);
      });
    }

    const badConfigs: [string, Record<string, string>, RegExp][] = [
      ["no queue", {}, /SQS_QUEUE_URL is not set/],
      ["a batch size SQS cannot do", { SQS_MAX_MESSAGES: "25" }, /SQS_MAX_MESSAGES must be a whole number from 1 to 10 \(got "25"\)/],
      ["both a handler and a command", { WORKER_COMMAND: "cat" }, /WORKER_HANDLER and WORKER_COMMAND are both set/],
      ["a handler that does not exist", { WORKER_HANDLER: "/nonexistent/handler.js" }, /WORKER_HANDLER cannot be loaded from \/nonexistent\/handler\.js/],
      ["a command that is not executable", { WORKER_HANDLER: "", WORKER_COMMAND: `${RECORD_HANDLER} --x` }, /WORKER_COMMAND runs \S+record\.js, which is not an executable file/],
    ];
    for (const [what, env, message] of badConfigs) {
      it(`on ${what}: one line naming the variable, exit ${EXIT.CONFIG_ERROR} (not restarted)`, async () => {
        const q: Record<string, string> = what === "no queue" ? {} : { SQS_QUEUE_URL: `${sqs.endpoint}/000000000000/none` };
        const w = run({ ...q, WORKER_HANDLER: RECORD_HANDLER, ...env });
        assert.equal(await w.exited, EXIT.CONFIG_ERROR);
        const lines = w.stdout().split("\n").filter((l) => l.trim() && !/NodeVersionSupportWarning|node >=|^\(|^To continue|^More information|^versions|^will require|^and security/.test(l));
        assert.equal(lines.length, 1, `one line, got:\n${lines.join("\n")}`);
        const line = JSON.parse(lines[0]) as { level: number | string; msg: string; variable: string };
        assert.match(line.msg, message);
        assert.match(line.msg, new RegExp(`^configuration error: ${line.variable}`));
      });
    }

    it("runs `env` too: without the instance's pointers it names what is missing, exit 78", async () => {
      const w = run({}, ["env"]);
      assert.equal(await w.exited, EXIT.CONFIG_ERROR);
      assert.match(w.stdout(), /kiln-worker env failed: KILN_SSM_PREFIX is not set/);
    });

    it("--self-check passes on a good configuration without touching the queue", async () => {
      const q = await sqs.queuePair(`selfcheck-${flavour}-${n++}`);
      await sqs.send(q.url, ["untouched"]);
      const w = run({ SQS_QUEUE_URL: q.url, AWS_ENDPOINT_URL_SQS: sqs.endpoint, WORKER_HANDLER: RECORD_HANDLER }, ["run", "--self-check"]);
      assert.equal(await w.exited, 0);
      assert.match(w.stdout(), /self-check passed/);
      assert.deepEqual(await sqs.depth(q.url), { visible: 1, inFlight: 0, delayed: 0 });
    });

    it("drains on SIGTERM: stops receiving, finishes every in-flight message, exits 0, and nothing is redelivered", async () => {
      const q = await sqs.queuePair(`sigterm-${flavour}-${n++}`);
      const bodies = Array.from({ length: 12 }, (_, i) => `t${i}`);
      await sqs.send(q.url, bodies);
      const rec = recordFile();
      const env = {
        SQS_QUEUE_URL: q.url,
        AWS_ENDPOINT_URL_SQS: sqs.endpoint,
        WORKER_HANDLER: RECORD_HANDLER,
        RECORD_FILE: rec.file,
        HANDLER_MS: "1500",
        MAX_WORKERS: "3",
        SQS_WAIT_TIME: "20",
        LOG_LEVEL: "info",
      };
      try {
        const w = run(env);
        assert.ok(await eventually(() => rec.lines().filter((l) => l.startsWith("start")).length === 3));
        const t0 = Date.now();
        w.child.kill("SIGTERM");
        assert.equal(await w.exited, EXIT.DRAINED);
        // A 20 s long poll was open: stopping did not wait for it.
        assert.ok(Date.now() - t0 < 5_000, `drained in ${Date.now() - t0} ms`);
        const first = rec.lines();
        assert.equal(first.filter((l) => l.startsWith("start")).length, 3, "nothing received after SIGTERM");
        assert.equal(first.filter((l) => l.startsWith("done")).length, 3, "every in-flight message finished");
        assert.match(w.stdout(), /"msg":"draining"[\s\S]*"msg":"stopped"/);
        assert.deepEqual(await sqs.depth(q.url), { visible: 9, inFlight: 0, delayed: 0 }, "its 3 deleted, the rest visible at once");

        // A second worker takes the rest: over both runs every message is handled exactly once.
        const w2 = run({ ...env, HANDLER_MS: "0", SQS_WAIT_TIME: "1" });
        assert.ok(await eventually(() => rec.lines().filter((l) => l.startsWith("done")).length >= 12));
        w2.child.kill("SIGTERM");
        assert.equal(await w2.exited, EXIT.DRAINED);
        const done = rec.lines().filter((l) => l.startsWith("done")).map((l) => l.split(" ")[1]);
        assert.deepEqual(done.sort(), [...bodies].sort());
        assert.deepEqual(await sqs.depth(q.url), { visible: 0, inFlight: 0, delayed: 0 });
      } finally {
        rec.remove();
      }
    });

    it("runs an existing script per message with WORKER_COMMAND, as the seeds' Python worker would plug in", async () => {
      const q = await sqs.queuePair(`command-${flavour}-${n++}`);
      await sqs.send(q.url, ["alpha", "fail", "beta"]);
      const rec = recordFile();
      const script = path.join(path.dirname(rec.file), "worker.sh");
      fs.writeFileSync(
        script,
        '#!/bin/sh\nbody=$(cat)\n[ "$body" = fail ] && exit 3\necho "$body $KILN_RECEIVE_COUNT ${KILN_MESSAGE_ID:+id}" >> "$RECORD_FILE"\n',
        { mode: 0o755 },
      );
      try {
        const w = run({
          SQS_QUEUE_URL: q.url,
          AWS_ENDPOINT_URL_SQS: sqs.endpoint,
          WORKER_COMMAND: script,
          RECORD_FILE: rec.file,
          SQS_WAIT_TIME: "1",
          WORKER_RETRY_DELAY: "30",
        });
        assert.ok(await eventually(() => rec.lines().length === 2));
        assert.ok(await eventually(async () => (await sqs.depth(q.url)).inFlight === 1), "the failed one waits out its retry delay");
        w.child.kill("SIGTERM");
        assert.equal(await w.exited, EXIT.DRAINED);
        assert.deepEqual(rec.lines().sort(), ["alpha 1 id", "beta 1 id"]);
        assert.match(w.stdout(), /"err":"command exited with 3","msg":"message failed; it returns to the queue"/);
      } finally {
        rec.remove();
      }
    });
  });
}
