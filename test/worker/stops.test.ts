import { strict as assert } from "node:assert";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { SendMessageCommand } from "@aws-sdk/client-sqs";
import { EXIT } from "../../worker/contract";
import { LatencyProxy, startLatencyProxy } from "../../bench/latency-proxy";
import { isAlive as alive } from "../local/support";
import { eventually, sleep, TestSqs } from "../support/sqs";
import { BUNDLE, ensureBundle, recordFile, startWorker, WorkerProcess } from "../support/worker-process";

const MISBEHAVE = path.join(__dirname, "..", "support", "handlers", "misbehave.js");
const RECORD = path.join(__dirname, "..", "support", "handlers", "record.js");

/** Every line the worker wrote: each must be one JSON record (the SDK's Node 20 notice aside). */
function jsonLines(w: WorkerProcess): Record<string, unknown>[] {
  return w
    .stdout()
    .split("\n")
    .filter((l) => l.trim() && !/NodeVersionSupportWarning|node >=|^\(|^To continue|^More information|^versions|^will require|^and security/.test(l))
    .map((l) => {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch {
        return assert.fail(`not a JSON log line: ${JSON.stringify(l)}`);
      }
    });
}

/**
 * The stop, hang and typo cases that used to strand or burn messages, each with the worker as it
 * ships (the bundle) as a process, against the embedded SQS behind a proxy that adds 10 ms of
 * network latency and, like SQS, never cancels a request the worker gave up on.
 */
describe("stops, hangs and typos that must strand or burn no message (bundle)", function () {
  this.timeout(120_000);
  let sqs: TestSqs;
  let proxy: LatencyProxy;
  let n = 0;
  const started: WorkerProcess[] = [];

  before(async () => {
    await ensureBundle();
    sqs = await TestSqs.start();
    proxy = await startLatencyProxy(sqs.endpoint, 10);
  });
  after(async () => {
    await proxy.stop();
    await sqs.stop();
  });
  afterEach(async () => {
    for (const w of started.splice(0)) {
      if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill("SIGKILL");
      await w.exited;
    }
  });

  const worker = (env: Record<string, string>, args?: string[]) => {
    const w = startWorker("bundle", { AWS_ENDPOINT_URL_SQS: proxy.endpoint, SQS_WAIT_TIME: "2", LOG_LEVEL: "info", ...env }, args);
    started.push(w);
    return w;
  };
  const ready = (w: WorkerProcess) => eventually(() => /worker started/.test(w.stdout()), 20_000);
  const lines = (file: string) => fs.readFileSync(file, "utf8").split("\n").filter(Boolean);

  it("leaves nothing hidden after SIGTERM to an idle worker, even messages sent into the long poll it had open", async () => {
    let stranded = 0;
    for (let round = 0; round < 3; round++) {
      const q = await sqs.queuePair(`idle-${n++}`);
      const w = worker({ SQS_QUEUE_URL: q.url, WORKER_HANDLER: RECORD, RECORD_FILE: "/dev/null", SQS_WAIT_TIME: "3" });
      assert.ok(await ready(w));
      await sleep(200);
      w.child.kill("SIGTERM");
      await sleep(100);
      await sqs.send(q.url, Array.from({ length: 6 }, (_, i) => `r${i}`));
      assert.equal(await w.exited, EXIT.DRAINED);
      // At the moment it has exited, nothing it was handed may still be hidden.
      const depth = await sqs.depth(q.url);
      stranded += depth.inFlight;
      assert.equal(depth.visible + depth.inFlight, 6);
    }
    assert.equal(stranded, 0, "messages hidden when the worker exited");
  });

  it("strands nothing over many SIGTERMs at random points of a busy run", async () => {
    const q = await sqs.queuePair(`busy-${n++}`, { maxReceiveCount: 100 });
    const rec = recordFile();
    const total = 300;
    await sqs.send(q.url, Array.from({ length: total }, (_, i) => `b${i}`));
    let stranded = 0;
    let stops = 0;
    try {
      while (stops < 8) {
        const w = worker({ SQS_QUEUE_URL: q.url, WORKER_HANDLER: RECORD, RECORD_FILE: rec.file, HANDLER_MS: "30", MAX_WORKERS: "4" });
        assert.ok(await ready(w));
        await sleep(100 + Math.random() * 700);
        w.child.kill("SIGTERM");
        assert.equal(await w.exited, EXIT.DRAINED);
        stops++;
        stranded += (await sqs.depth(q.url)).inFlight;
      }
      assert.equal(stranded, 0, `messages hidden at ${stops} exits`);
      const done = new Set(lines(rec.file).filter((l) => l.startsWith("done")).map((l) => l.split(" ")[1]));
      const d = await sqs.depth(q.url);
      assert.equal(done.size + d.visible, total, "every message processed or visible, none lost");
    } finally {
      rec.remove();
    }
  });

  it("on a second SIGTERM during a drain, releases the in-flight messages at once rather than losing them", async () => {
    const q = await sqs.queuePair(`twice-${n++}`);
    await sqs.send(q.url, ["a", "b", "c", "d"]);
    const rec = recordFile();
    const w = worker({ SQS_QUEUE_URL: q.url, WORKER_HANDLER: RECORD, RECORD_FILE: rec.file, HANDLER_MS: "30000", MAX_WORKERS: "2" });
    try {
      assert.ok(await eventually(() => lines(rec.file).filter((l) => l.startsWith("start")).length === 2, 20_000));
      w.child.kill("SIGTERM");
      await sleep(300);
      assert.equal(w.child.exitCode, null, "the first signal drains: still waiting for its 30 s messages");
      w.child.kill("SIGTERM");
      assert.equal(await w.exited, EXIT.DRAINED);
      assert.deepEqual(await sqs.depth(q.url), { visible: 4, inFlight: 0, delayed: 0 }, "both released, nothing hidden");
      assert.ok(jsonLines(w).some((l) => l.msg === "second signal: releasing in-flight messages now"));
    } finally {
      rec.remove();
    }
  });

  it("refuses a command that cannot run at start, in run and in --self-check, instead of draining the queue into the DLQ", async () => {
    const q = await sqs.queuePair(`typo-${n++}`);
    await sqs.send(q.url, ["x"]);
    for (const [command, message] of [
      ["no-such-program --flag", /WORKER_COMMAND runs no-such-program, which is not on PATH/],
      ["/bin/sh /opt/app/missing.sh", /WORKER_COMMAND runs \/bin\/sh on \/opt\/app\/missing\.sh, which does not exist/],
      ["python3 -u /opt/app/worker.py --lang jpn", /WORKER_COMMAND runs python3 on \/opt\/app\/worker\.py, which does not exist/],
    ] as [string, RegExp][]) {
      for (const args of [["run"], ["run", "--self-check"]]) {
        const w = worker({ SQS_QUEUE_URL: q.url, WORKER_COMMAND: command }, args);
        assert.equal(await w.exited, EXIT.CONFIG_ERROR, command);
        const fatal = jsonLines(w).filter((l) => l.level === "fatal");
        assert.equal(fatal.length, 1);
        assert.match(String(fatal[0].msg), message);
      }
    }
    assert.deepEqual(await sqs.depth(q.url), { visible: 1, inFlight: 0, delayed: 0 }, "the message was never touched");
  });

  it("stops with a configuration error, releasing the message, when a command's program vanishes (sh exits 127)", async () => {
    const q = await sqs.queuePair(`vanish-${n++}`);
    const dir = fs.mkdtempSync(path.join(require("node:os").tmpdir(), "kiln-vanish-"));
    const script = path.join(dir, "work.sh");
    fs.writeFileSync(script, "#!/bin/sh\ncat > /dev/null\n", { mode: 0o755 });
    // The command finds its program at start; a deploy then removes the tool it calls.
    const w = worker({ SQS_QUEUE_URL: q.url, WORKER_COMMAND: `${script} && ${dir}/tool`, MAX_WORKERS: "1" });
    try {
      assert.ok(await ready(w));
      await sqs.send(q.url, Array.from({ length: 50 }, (_, i) => `v${i}`));
      assert.equal(await w.exited, EXIT.CONFIG_ERROR);
      const d = await sqs.depth(q.url);
      assert.deepEqual({ dlq: (await sqs.depth(q.dlqUrl)).visible, inFlight: d.inFlight, all: d.visible }, { dlq: 0, inFlight: 0, all: 50 });
      const fatal = jsonLines(w).find((l) => l.level === "fatal")!;
      assert.match(String(fatal.msg), /configuration error: WORKER_COMMAND was not found by \/bin\/sh \(exit 127\)/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a synchronous endless loop in a handler: its timeout still fires, the other slot works on, SIGTERM is honoured", async () => {
    const q = await sqs.queuePair(`spin-${n++}`, { visibilityTimeout: 3, maxReceiveCount: 1 });
    const rec = recordFile();
    const w = worker({
      SQS_QUEUE_URL: q.url,
      WORKER_HANDLER: MISBEHAVE,
      RECORD_FILE: rec.file,
      MAX_WORKERS: "2",
      PROCESSING_TIMEOUT: "2",
      SQS_VISIBILITY_TIMEOUT: "3",
    });
    try {
      assert.ok(await ready(w));
      await sqs.send(q.url, ["spin"]);
      assert.ok(await eventually(() => lines(rec.file).some((l) => l.startsWith("start spin"))));
      await sqs.send(q.url, Array.from({ length: 10 }, (_, i) => `ok${i}`));
      assert.ok(await eventually(() => lines(rec.file).filter((l) => l.startsWith("done ok")).length === 10, 20_000), "the other slot carried on");
      // Its thread is ended after the timeout and a grace period; the message fails (maxReceiveCount 1: the DLQ).
      assert.ok(await eventually(async () => (await sqs.depth(q.dlqUrl)).visible === 1, 20_000));
      assert.equal(lines(rec.file).filter((l) => l.startsWith("start spin")).length, 1, "kept hidden while it spun: never handed out twice");
      assert.ok(jsonLines(w).some((l) => /still running synchronously after its processing timeout/.test(String(l.msg))));
      await sqs.send(q.url, ["spin"]);
      assert.ok(await eventually(() => lines(rec.file).filter((l) => l.startsWith("start spin")).length === 2));
      w.child.kill("SIGTERM");
      assert.equal(await w.exited, EXIT.DRAINED, "SIGTERM honoured while a handler spins");
    } finally {
      rec.remove();
    }
  });

  it("a handler that ignores its abort signal never shares its slot: no more handlers run than MAX_WORKERS", async () => {
    const q = await sqs.queuePair(`ignore-${n++}`, { maxReceiveCount: 3 });
    const rec = recordFile();
    const w = worker({
      SQS_QUEUE_URL: q.url,
      WORKER_HANDLER: MISBEHAVE,
      RECORD_FILE: rec.file,
      MAX_WORKERS: "2",
      PROCESSING_TIMEOUT: "1",
      WORKER_RETRY_DELAY: "0",
    });
    try {
      assert.ok(await ready(w));
      await sqs.send(q.url, ["ignore", ...Array.from({ length: 20 }, (_, i) => `ok${i}`)]);
      assert.ok(await eventually(() => lines(rec.file).filter((l) => l.startsWith("start ignore")).length >= 2, 40_000), "retried after its thread was replaced");
      // Who was running when, from the handler's own lines: an "ignore" run lasts from its start to its last tick.
      const events = lines(rec.file).map((l) => l.split(" "));
      const spans: [number, number][] = [];
      for (const [kind, body, thread, at] of events) {
        if (kind !== "start") continue;
        const mine = events.filter((e) => e[1] === body && e[2] === thread && Number(e[3]) >= Number(at));
        const next = mine.find((e) => e[0] === "start" && Number(e[3]) > Number(at));
        const end = mine.filter((e) => (e[0] === "tick" || e[0] === "done") && (!next || Number(e[3]) < Number(next[3]))).at(-1);
        spans.push([Number(at), end ? Number(end[3]) : Number(at)]);
      }
      const peak = Math.max(...spans.map(([s]) => spans.filter(([a, b]) => a <= s && s <= b).length));
      assert.ok(peak <= 2, `${peak} handlers ran at once with MAX_WORKERS=2`);
      assert.ok(jsonLines(w).some((l) => /a handler ignored its processing timeout/.test(String(l.msg))));
    } finally {
      rec.remove();
    }
  });

  it("kills a command that ignores SIGTERM before the worker exits, and releases its message", async () => {
    const q = await sqs.queuePair(`stubborn-${n++}`);
    const rec = recordFile();
    await sqs.send(q.url, ["x"]);
    const w = worker({
      SQS_QUEUE_URL: q.url,
      WORKER_COMMAND: `trap '' TERM; echo $$ >> ${rec.file}; while :; do sleep 0.1; done`,
      WORKER_DRAIN_TIMEOUT: "1",
      MAX_WORKERS: "1",
    });
    try {
      assert.ok(await eventually(() => lines(rec.file).length === 1, 20_000));
      const pid = Number(lines(rec.file)[0]);
      w.child.kill("SIGTERM");
      assert.equal(await w.exited, EXIT.DRAINED);
      assert.equal(alive(pid), false, "nothing of the command outlives the worker");
      assert.deepEqual(await sqs.depth(q.url), { visible: 1, inFlight: 0, delayed: 0 }, "its message is back at once");
    } finally {
      rec.remove();
    }
  });

  it("backs off on an empty queue with SQS_WAIT_TIME=0 instead of asking hundreds of times a second", async () => {
    const q = await sqs.queuePair(`short-${n++}`);
    const w = worker({ SQS_QUEUE_URL: q.url, WORKER_HANDLER: RECORD, RECORD_FILE: "/dev/null", SQS_WAIT_TIME: "0" });
    assert.ok(await ready(w));
    await sleep(1_000);
    const before = proxy.counts.ReceiveMessage ?? 0;
    await sleep(3_000);
    const perSecond = ((proxy.counts.ReceiveMessage ?? 0) - before) / 3;
    assert.ok(perSecond <= 2, `${perSecond.toFixed(1)} receives a second on an empty queue`);
    // And a message still gets picked up within the back-off's cap.
    await sqs.send(q.url, ["late"]);
    assert.ok(await eventually(async () => (await sqs.depth(q.url)).visible === 0, 5_000));
    w.child.kill("SIGTERM");
    assert.equal(await w.exited, EXIT.DRAINED);
  });

  it("survives a handler that throws from a timer: one error line, its thread replaced, every message handled", async () => {
    const q = await sqs.queuePair(`timer-${n++}`, { maxReceiveCount: 5 });
    const rec = recordFile();
    const w = worker({ SQS_QUEUE_URL: q.url, WORKER_HANDLER: MISBEHAVE, RECORD_FILE: rec.file, MAX_WORKERS: "2", WORKER_RETRY_DELAY: "0" });
    try {
      await sqs.send(q.url, ["timer", ...Array.from({ length: 10 }, (_, i) => `ok${i}`)]);
      assert.ok(await eventually(() => lines(rec.file).filter((l) => l.startsWith("done ok")).length === 10, 30_000));
      const records = jsonLines(w);
      assert.ok(records.some((l) => l.level === "error" && /threw outside any message's promise/.test(String(l.msg)) && /thrown from a timer/.test(String(l.err))));
      assert.equal(w.child.exitCode, null, "the worker lives on");
      w.child.kill("SIGTERM");
      assert.equal(await w.exited, EXIT.DRAINED);
    } finally {
      rec.remove();
    }
  });

  it("keeps a command's output apart from its own log lines, tagged with the message id, and its stderr in the failure line", async () => {
    const q = await sqs.queuePair(`output-${n++}`, { maxReceiveCount: 1 });
    const sent = await sqs.client.send(
      new SendMessageCommand({
        QueueUrl: q.url,
        MessageBody: "hello",
        MessageAttributes: { tenant: { DataType: "String", StringValue: "acme" } },
      }),
    );
    const w = worker({
      SQS_QUEUE_URL: q.url,
      WORKER_COMMAND: `printf 'no newline from %s' "$KILN_ATTR_tenant"; printf '%s' "$KILN_MESSAGE_ATTRIBUTES" >&2; echo; echo 'it went wrong' >&2; exit 3`,
      MAX_WORKERS: "1",
    });
    assert.ok(await eventually(() => /message failed/.test(w.stdout()), 20_000));
    w.child.kill("SIGTERM");
    assert.equal(await w.exited, EXIT.DRAINED);
    const records = jsonLines(w);
    const out = records.filter((l) => l.source === "command");
    assert.deepEqual(
      out.map((l) => [l.stream, l.msg, l.messageId]).sort((a, b) => String(a[0]).localeCompare(String(b[0]))),
      [
        ["stderr", '{"tenant":"acme"}it went wrong', sent.MessageId],
        ["stdout", "no newline from acme", sent.MessageId],
      ],
    );
    const failed = records.find((l) => l.msg === "message failed; it returns to the queue")!;
    assert.equal(failed.err, "command exited with 3");
    assert.deepEqual(failed.stderr, ['{"tenant":"acme"}it went wrong']);
  });

  it("drains and exits when the process that started it is killed, rather than polling on as an orphan", async () => {
    const q = await sqs.queuePair(`orphan-${n++}`);
    // A shell that stays the worker's parent, as the local fleet or a terminal would.
    const shell = spawn("/bin/sh", ["-c", `"${process.execPath}" "${BUNDLE}" run; true`], {
      env: { ...process.env, SQS_QUEUE_URL: q.url, AWS_ENDPOINT_URL_SQS: proxy.endpoint, AWS_REGION: "ap-northeast-1", AWS_ACCESS_KEY_ID: "test", AWS_SECRET_ACCESS_KEY: "test", WORKER_HANDLER: RECORD, RECORD_FILE: "/dev/null", SQS_WAIT_TIME: "1", LOG_LEVEL: "info" },
      stdio: ["ignore", "pipe", "ignore"],
    });
    let out = "";
    shell.stdout!.on("data", (d) => (out += d));
    assert.ok(await eventually(() => /worker started/.test(out), 20_000));
    const pid = Number(/"pid":(\d+)/.exec(out)![1]);
    shell.kill("SIGKILL");
    assert.ok(await eventually(() => !alive(pid), 10_000), "the orphaned worker went away by itself");
    assert.match(out, /"why":"its parent process \d+ is gone"[^\n]*"exitCode":0,"msg":"stopped"/);
  });

  it("gives up on a queue that does not exist after WORKER_QUEUE_WAIT: a configuration error, not endless retries", async () => {
    const w = worker({ SQS_QUEUE_URL: `${sqs.endpoint}/000000000000/no-such-queue`, WORKER_HANDLER: RECORD, RECORD_FILE: "/dev/null", WORKER_QUEUE_WAIT: "2" });
    assert.equal(await w.exited, EXIT.CONFIG_ERROR);
    const fatal = jsonLines(w).filter((l) => l.level === "fatal");
    assert.equal(fatal.length, 1);
    assert.match(String(fatal[0].msg), /SQS_QUEUE_URL names a queue that does not exist/);
  });
});
