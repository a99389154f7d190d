import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { SendMessageCommand } from "@aws-sdk/client-sqs";
import { EXIT } from "../../worker/contract";
import { runWorker } from "../../worker/run";
import { isAlive as alive } from "../local/support";
import { eventually, sleep, TestSqs } from "../support/sqs";
import { ensureBundle, recordFile, startWorker } from "../support/worker-process";

/** The test app (Python standard library): records every request, misbehaves on demand. */
const APP = `python3 ${path.join(__dirname, "..", "support", "apps", "sqsd_app.py")}`;
const EXAMPLE = path.join(__dirname, "..", "..", "worker", "examples", "file-processor", "app.py");

interface Entry {
  event: string;
  body?: string;
  pid: number;
  slot: string;
  at: number;
  path?: string;
  headers?: Record<string, string>;
  ready?: boolean;
  status?: number;
  env?: Record<string, string | null>;
}

const entries = (file: string): Entry[] =>
  fs.readFileSync(file, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as Entry);

describe("app mode (WORKER_APP): a long-lived app in any language, fed as Elastic Beanstalk's sqsd does", function () {
  this.timeout(60_000);
  let sqs: TestSqs;
  let n = 0;
  before(async () => (sqs = await TestSqs.start()));
  after(async () => sqs.stop());

  /** A worker in this process running the test app; `stop()` drains it and returns its exit code. */
  async function run(extra: Record<string, string> = {}, opts: { maxReceiveCount?: number } = {}) {
    const q = await sqs.queuePair(`app-${n++}`, { maxReceiveCount: opts.maxReceiveCount ?? 3 });
    const rec = recordFile();
    const logs: string[] = [];
    let code: number | undefined;
    const running = runWorker({
      env: {
        PATH: process.env.PATH,
        SQS_QUEUE_URL: q.url,
        AWS_ENDPOINT_URL_SQS: sqs.endpoint,
        AWS_REGION: "ap-northeast-1",
        AWS_ACCESS_KEY_ID: "test",
        AWS_SECRET_ACCESS_KEY: "test",
        WORKER_APP: APP,
        WORKER_APP_HEALTH_PATH: "/health",
        RECORD_FILE: rec.file,
        SQS_WAIT_TIME: "1",
        MAX_WORKERS: "2",
        WORKER_RETRY_DELAY: "0",
        LOG_LEVEL: "info",
        ...extra,
      },
      killGraceMs: 1_000,
      recycleCheckMs: 100,
    }).then((c) => (code = c));
    return {
      q,
      rec,
      entries: () => entries(rec.file),
      exited: () => code,
      logs,
      stop: async () => {
        if (code === undefined) process.emit("SIGTERM", "SIGTERM");
        const c = await running;
        rec.remove();
        return c;
      },
    };
  }

  const done = (es: Entry[], status = 200) => es.filter((e) => e.event === "done" && e.status === status);

  it("POSTs each body to the app with sqsd's headers; 200 deletes the message", async () => {
    const w = await run({ MAX_WORKERS: "1" });
    try {
      const sent = await sqs.client.send(
        new SendMessageCommand({
          QueueUrl: w.q.url,
          MessageBody: '{"key":"uploads/a.pdf","名前":"ファイル"}',
          MessageAttributes: {
            color: { DataType: "String", StringValue: "blue" },
            pages: { DataType: "Number", StringValue: "12" },
            blob: { DataType: "Binary", BinaryValue: Buffer.from([1, 2, 3]) },
          },
        }),
      );
      assert.ok(await eventually(() => done(w.entries()).length === 1));
      const start = w.entries().find((e) => e.event === "start")!;
      assert.equal(start.body, '{"key":"uploads/a.pdf","名前":"ファイル"}', "the body byte for byte, UTF-8 included");
      assert.equal(start.path, "/");
      const h = start.headers!;
      assert.equal(h["X-Aws-Sqsd-Msgid"], sent.MessageId);
      assert.equal(h["X-Aws-Sqsd-Receive-Count"], "1");
      assert.equal(h["X-Aws-Sqsd-Queue"], `app-${n - 1}`);
      assert.match(h["X-Aws-Sqsd-First-Received-At"], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      assert.match(h["X-Aws-Sqsd-Sent-At"], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      assert.ok(h["X-Aws-Sqsd-Sender-Id"], "the sender id");
      assert.equal(h["X-Aws-Sqsd-Attr-color"], "blue");
      assert.equal(h["X-Aws-Sqsd-Attr-pages"], "12");
      assert.equal(h["X-Aws-Sqsd-Attr-blob"], undefined, "binary attributes are left out, as sqsd does");
      assert.equal(h["Content-Type"], "application/json");
      assert.match(h["User-Agent"], /^aws-sqsd\//);
      assert.ok(await eventually(async () => (await sqs.depth(w.q.url)).inFlight === 0), "deleted");
      assert.deepEqual(await sqs.depth(w.q.url), { visible: 0, inFlight: 0, delayed: 0 });
    } finally {
      assert.equal(await w.stop(), EXIT.DRAINED);
    }
  });

  it("sends no message before the app answers its health check", async () => {
    const q = await sqs.queuePair(`early-${n++}`);
    await sqs.send(q.url, ["a", "b", "c"]);
    const rec = recordFile();
    const running = runWorker({
      env: {
        PATH: process.env.PATH,
        SQS_QUEUE_URL: q.url,
        AWS_ENDPOINT_URL_SQS: sqs.endpoint,
        AWS_REGION: "ap-northeast-1",
        AWS_ACCESS_KEY_ID: "test",
        AWS_SECRET_ACCESS_KEY: "test",
        WORKER_APP: APP,
        WORKER_APP_HEALTH_PATH: "/health",
        READY_AFTER: "1.5",
        RECORD_FILE: rec.file,
        SQS_WAIT_TIME: "1",
        MAX_WORKERS: "1",
        LOG_LEVEL: "error",
      },
    });
    try {
      assert.ok(await eventually(() => done(entries(rec.file)).length === 3, 15_000));
      const es = entries(rec.file);
      assert.ok(es.some((e) => e.event === "health" && !e.ready), "it was asked before it was ready");
      assert.ok(es.filter((e) => e.event === "start").every((e) => e.ready), "and got no message until it was");
    } finally {
      process.emit("SIGTERM", "SIGTERM");
      assert.equal(await running, EXIT.DRAINED);
      rec.remove();
    }
  });

  it("runs MAX_WORKERS processes, one message in each at a time, each with its own PORT and the worker's environment", async () => {
    const w = await run({ MAX_WORKERS: "3", RECORD_ENV: "PORT,KILN_APP_SLOT,SQS_QUEUE_URL,PDF_DPI", PDF_DPI: "200" });
    try {
      await sqs.send(w.q.url, [...Array.from({ length: 12 }, () => "slow:200"), "env", "env", "env"]);
      assert.ok(await eventually(() => done(w.entries()).length === 15, 20_000));
      const es = w.entries();
      const pids = new Set(es.filter((e) => e.event === "start").map((e) => e.pid));
      assert.equal(pids.size, 3, "three app processes");
      // Overlap from the app's own records: never two messages in one process, never more than 3 in all.
      const timeline = es.filter((e) => e.event === "start" || e.event === "done").sort((a, b) => a.at - b.at);
      let inAll = 0;
      let peak = 0;
      const inProcess = new Map<number, number>();
      for (const e of timeline) {
        const d = e.event === "start" ? 1 : -1;
        inAll += d;
        peak = Math.max(peak, inAll);
        inProcess.set(e.pid, (inProcess.get(e.pid) ?? 0) + d);
        assert.ok(inProcess.get(e.pid)! <= 1, `process ${e.pid} got a second message while busy`);
      }
      assert.equal(peak, 3);
      const envs = es.filter((e) => e.event === "env").map((e) => e.env!);
      assert.ok(envs.every((e) => e.SQS_QUEUE_URL === w.q.url && e.PDF_DPI === "200"), "the worker's environment, kiln:env included");
      assert.ok(envs.every((e) => /^\d+$/.test(e.PORT!) && /^[0-2]$/.test(e.KILN_APP_SLOT!)));
    } finally {
      assert.equal(await w.stop(), EXIT.DRAINED);
    }
  });

  it("at the processing timeout kills only the process holding the message, restarts it, and the other slot carries on", async () => {
    const w = await run({ PROCESSING_TIMEOUT: "2" }, { maxReceiveCount: 1 });
    try {
      await sqs.send(w.q.url, ["hang"]);
      assert.ok(await eventually(() => w.entries().some((e) => e.event === "start" && e.body === "hang")));
      const hang = w.entries().find((e) => e.body === "hang")!;
      await sqs.send(w.q.url, Array.from({ length: 8 }, () => "slow:300"));
      assert.ok(await eventually(() => done(w.entries()).length === 8, 20_000));
      assert.ok(await eventually(() => !alive(hang.pid), 5_000), "the hung process was killed");
      assert.ok(await eventually(async () => (await sqs.depth(w.q.dlqUrl)).visible === 1, 10_000), "its message failed (maxReceiveCount 1: the DLQ)");
      assert.ok(
        done(w.entries()).some((e) => e.pid !== hang.pid && e.at < hang.at + 2),
        "the other slot finished messages while the hung one was still within its timeout",
      );
      assert.equal(done(w.entries()).length, 8, "every other message finished: none was lost to the kill");
      // The slot came back: a fresh process took messages after the kill.
      await sqs.send(w.q.url, ["slow:10", "slow:10", "slow:10", "slow:10"]);
      assert.ok(await eventually(() => done(w.entries()).length === 12, 10_000));
      assert.ok(new Set(w.entries().filter((e) => e.event === "start").map((e) => e.pid)).size >= 3, "a new process in the hung one's slot");
    } finally {
      assert.equal(await w.stop(), EXIT.DRAINED);
    }
  });

  it("restarts a process that dies; its message is retried, and an answer other than 200 is a retry too", async () => {
    const w = await run({ MAX_WORKERS: "1" }, { maxReceiveCount: 5 });
    try {
      await sqs.send(w.q.url, ["crash"]);
      assert.ok(await eventually(() => w.entries().filter((e) => e.body === "crash" && e.event === "start").length >= 2, 15_000), "retried");
      const pids = new Set(w.entries().filter((e) => e.body === "crash").map((e) => e.pid));
      assert.ok(pids.size >= 2, "on a fresh process each time");
      await sqs.send(w.q.url, ["fail", "ok"]);
      assert.ok(await eventually(() => done(w.entries()).some((e) => e.body === "ok"), 15_000), "the app keeps serving");
      assert.ok(await eventually(() => w.entries().filter((e) => e.body === "fail" && e.event === "start").length >= 2, 15_000), "500 is retried");
    } finally {
      assert.equal(await w.stop(), EXIT.DRAINED);
    }
  });

  it("recycles an app process after WORKER_MAX_MESSAGES once its message is done, in place", async () => {
    const w = await run({ MAX_WORKERS: "1", WORKER_MAX_MESSAGES: "3" });
    try {
      await sqs.send(w.q.url, Array.from({ length: 9 }, () => "slow:20"));
      assert.ok(await eventually(() => done(w.entries()).length === 9, 30_000));
      const byPid = new Map<number, number>();
      for (const e of done(w.entries())) byPid.set(e.pid, (byPid.get(e.pid) ?? 0) + 1);
      assert.deepEqual([...byPid.values()], [3, 3, 3]);
      assert.equal(w.exited(), undefined, "the worker itself goes on");
    } finally {
      assert.equal(await w.stop(), EXIT.DRAINED);
    }
  });

  it("counts the app's memory against WORKER_MAX_RSS_MB and recycles the process that holds it", async () => {
    // The worker process here is mocha itself: the limit sits 150 MiB above what it holds now.
    const limit = Math.round(process.memoryUsage.rss() / 2 ** 20 + 150);
    const w = await run({ MAX_WORKERS: "1", WORKER_MAX_RSS_MB: String(limit) });
    try {
      await sqs.send(w.q.url, Array.from({ length: 8 }, () => "leak:40"));
      assert.ok(await eventually(() => done(w.entries()).length === 8, 30_000));
      const pids = [...new Set(done(w.entries()).map((e) => e.pid))];
      assert.ok(pids.length >= 2, `the leaking app process was replaced (${pids.length} processes)`);
      assert.equal(w.exited(), undefined);
    } finally {
      assert.equal(await w.stop(), EXIT.DRAINED);
    }
  });

  it("runs the seeds-shaped Python example, and a bare http.server app that answers no GET", async () => {
    const q = await sqs.queuePair(`example-${n++}`, { maxReceiveCount: 1 });
    await sqs.send(q.url, [...Array.from({ length: 6 }, (_, i) => JSON.stringify({ key: `f${i}`, work_ms: 20 })), '{"fail":true}']);
    const running = runWorker({
      env: {
        PATH: process.env.PATH,
        SQS_QUEUE_URL: q.url,
        AWS_ENDPOINT_URL_SQS: sqs.endpoint,
        AWS_REGION: "ap-northeast-1",
        AWS_ACCESS_KEY_ID: "test",
        AWS_SECRET_ACCESS_KEY: "test",
        WORKER_APP: `python3 ${EXAMPLE}`,
        WORKER_APP_HEALTH_PATH: "/health",
        IMPORT_SECONDS: "0.2",
        SQS_WAIT_TIME: "1",
        MAX_WORKERS: "2",
        LOG_LEVEL: "error",
      },
    });
    try {
      assert.ok(await eventually(async () => (await sqs.depth(q.dlqUrl)).visible === 1, 20_000), "the failing one reached the DLQ");
      assert.ok(await eventually(async () => {
        const d = await sqs.depth(q.url);
        return d.visible === 0 && d.inFlight === 0;
      }));
    } finally {
      process.emit("SIGTERM", "SIGTERM");
      assert.equal(await running, EXIT.DRAINED);
    }

    // Ten lines of Python: POST only. Without a health path, any HTTP answer means ready.
    const dir = fs.mkdtempSync(path.join(require("node:os").tmpdir(), "kiln-bare-"));
    const bare = path.join(dir, "bare.py");
    const out = path.join(dir, "out");
    fs.writeFileSync(
      bare,
      [
        "import http.server, os",
        "class H(http.server.BaseHTTPRequestHandler):",
        "    def do_POST(self):",
        "        body = self.rfile.read(int(self.headers['Content-Length']))",
        "        open(os.environ['OUT'], 'ab').write(body + b'\\n')",
        "        self.send_response(200)",
        "        self.end_headers()",
        "http.server.HTTPServer(('127.0.0.1', int(os.environ['PORT'])), H).serve_forever()",
      ].join("\n"),
    );
    const q2 = await sqs.queuePair(`bare-${n++}`);
    await sqs.send(q2.url, ["one", "two", "three"]);
    const bareRun = runWorker({
      env: {
        PATH: process.env.PATH,
        SQS_QUEUE_URL: q2.url,
        AWS_ENDPOINT_URL_SQS: sqs.endpoint,
        AWS_REGION: "ap-northeast-1",
        AWS_ACCESS_KEY_ID: "test",
        AWS_SECRET_ACCESS_KEY: "test",
        WORKER_APP: `python3 ${bare}`,
        OUT: out,
        SQS_WAIT_TIME: "1",
        MAX_WORKERS: "1",
        LOG_LEVEL: "error",
      },
    });
    try {
      assert.ok(await eventually(() => fs.existsSync(out) && fs.readFileSync(out, "utf8").split("\n").filter(Boolean).length === 3));
      assert.deepEqual(fs.readFileSync(out, "utf8").split("\n").filter(Boolean).sort(), ["one", "three", "two"]);
    } finally {
      process.emit("SIGTERM", "SIGTERM");
      assert.equal(await bareRun, EXIT.DRAINED);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("app mode as a process (bundle)", function () {
  this.timeout(60_000);
  let sqs: TestSqs;
  before(async () => {
    await ensureBundle();
    sqs = await TestSqs.start();
  });
  after(async () => sqs.stop());

  const configLines = (out: string) => out.split("\n").filter((l) => l.startsWith("{"));

  for (const [what, env, message] of [
    ["never answers its health check", { NEVER_LISTEN: "1" }, /WORKER_APP app slot 0 did not answer HTTP on 127\.0\.0\.1:\d+ \(is it listening on \$PORT\?\): not listening, on purpose \(WORKER_APP_START_TIMEOUT is 2 s\)/],
    ["fails to start", { WORKER_APP: "python3 -c 'import no_such_module_here'" }, /WORKER_APP app slot 0 exited with 1 before it answered on port \d+: .*ModuleNotFoundError/],
    ["names a program that is not there", { WORKER_APP: "no-such-interpreter app.py" }, /WORKER_APP runs no-such-interpreter, which is not on PATH/],
    ["runs a script that is not there", { WORKER_APP: "python3 /opt/app/missing.py" }, /WORKER_APP runs python3 on \/opt\/app\/missing\.py, which does not exist/],
  ] as [string, Record<string, string>, RegExp][]) {
    it(`an app that ${what} is a configuration error: one line, exit 78, in run and in --self-check`, async () => {
      const rec = recordFile();
      for (const args of [["run"], ["run", "--self-check"]]) {
        const w = startWorker(
          "bundle",
          {
            SQS_QUEUE_URL: `${sqs.endpoint}/000000000000/none`,
            AWS_ENDPOINT_URL_SQS: sqs.endpoint,
            WORKER_APP: APP,
            WORKER_APP_START_TIMEOUT: "2",
            RECORD_FILE: rec.file,
            ...env,
          },
          args,
        );
        assert.equal(await w.exited, EXIT.CONFIG_ERROR);
        const lines = configLines(w.stdout()).filter((l) => !l.includes('"stream"'));
        assert.equal(lines.length, 1, lines.join("\n"));
        const line = JSON.parse(lines[0]) as { msg: string; variable: string };
        assert.equal(line.variable, "WORKER_APP");
        assert.match(line.msg, message);
      }
      rec.remove();
    });
  }

  it("--self-check starts the app, checks its health and stops it, touching no message", async () => {
    const q = await sqs.queuePair("app-selfcheck");
    await sqs.send(q.url, ["untouched"]);
    const rec = recordFile();
    const w = startWorker("bundle", { SQS_QUEUE_URL: q.url, AWS_ENDPOINT_URL_SQS: sqs.endpoint, WORKER_APP: APP, WORKER_APP_HEALTH_PATH: "/health", RECORD_FILE: rec.file, MAX_WORKERS: "2" }, ["run", "--self-check"]);
    assert.equal(await w.exited, EXIT.DRAINED);
    assert.match(w.stdout(), /self-check passed/);
    const es = entries(rec.file);
    assert.ok(es.some((e) => e.event === "health" && e.ready));
    assert.ok(es.every((e) => !alive(e.pid)), "no app process outlives the check");
    assert.deepEqual(await sqs.depth(q.url), { visible: 1, inFlight: 0, delayed: 0 });
    rec.remove();
  });

  it("drains on SIGTERM: the app finishes its messages, then every app process is gone before the worker exits", async () => {
    const q = await sqs.queuePair("app-drain");
    const rec = recordFile();
    const w = startWorker("bundle", {
      SQS_QUEUE_URL: q.url,
      AWS_ENDPOINT_URL_SQS: sqs.endpoint,
      WORKER_APP: APP,
      WORKER_APP_HEALTH_PATH: "/health",
      RECORD_FILE: rec.file,
      MAX_WORKERS: "2",
      SQS_WAIT_TIME: "1",
    });
    try {
      await sqs.send(q.url, ["slow:1500", "slow:1500", "slow:10"]);
      assert.ok(await eventually(() => entries(rec.file).filter((e) => e.event === "start").length === 2, 20_000));
      await sleep(100);
      w.child.kill("SIGTERM");
      assert.equal(await w.exited, EXIT.DRAINED);
      const es = entries(rec.file);
      assert.equal(es.filter((e) => e.event === "done" && e.body === "slow:1500").length, 2, "both in-flight messages finished");
      assert.ok(es.every((e) => !alive(e.pid)), "no app process left behind");
      assert.deepEqual(await sqs.depth(q.url), { visible: 1, inFlight: 0, delayed: 0 }, "the third, never started, is visible at once");
    } finally {
      rec.remove();
    }
  });
});
