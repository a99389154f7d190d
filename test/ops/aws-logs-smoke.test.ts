import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import * as YAML from "yaml";
import { eventually } from "../support/sqs";
import { DeployedStack, deployedStackSuite, STACK } from "./support/deployed-stack";
import { startShippedWorker } from "./support/shipped-worker";

function setLogLevel(stack: DeployedStack, level: string): void {
  const file = path.join(stack.dir, `Pulumi.${STACK}.yaml`);
  const doc = YAML.parseDocument(fs.readFileSync(file, "utf8"));
  (doc.get("config") as YAML.YAMLMap).set("kiln:logLevel", level);
  fs.writeFileSync(file, doc.toString());
}

describe("kiln smoke and logs against a deployed stack (moto, a real worker shipping its log)", function () {
  this.timeout(180_000);
  let stack!: DeployedStack;
  deployedStackSuite((s) => (stack = s));

  it("smoke at log level debug: the worker's processed line for the message, exit 0; a failure, exit 3 at once", async () => {
    setLogLevel(stack, "debug");
    const worker = startShippedWorker(stack, { instance: "i-0smoke1", logLevel: "debug" });
    try {
      const ok = await stack.run(["smoke", "--timeout", "60s", "--json"]);
      assert.equal(ok.code, 0, ok.out + ok.err);
      const r = ok.json();
      assert.deepEqual([r.ok, r.evidence], [true, "log"]);
      assert.ok(worker.lines.some((l) => l.msg === "processed" && l.messageId === r.messageId), "the worker really processed it");

      const failing = await stack.run(["smoke", "--timeout", "60s", "--body", '{"fail":true}']);
      assert.equal(failing.code, 3, failing.out);
      assert.match(failing.out, /^FAILED: a worker failed it after \d+ s: the message asked to fail \(demo\); it is retried and ends in the DLQ after kiln:maxReceiveCount \(3\) receives$/m);
    } finally {
      await worker.stop();
    }
  });

  it("smoke at log level warn: the processed metric rising after the send is the evidence", async () => {
    setLogLevel(stack, "warn");
    const worker = startShippedWorker(stack, { instance: "i-0smoke2", logLevel: "warn", metrics: true });
    const sends = stack.proxy.operations("sqs").filter((o) => o === "SendMessage").length;
    const smoke = stack.run(["smoke", "--timeout", "90s", "--json"]);
    // The worker publishes once a minute; a drain flushes what it counted: once the smoke message
    // is sent and the queue is empty again, stop it.
    assert.ok(await eventually(() => stack.proxy.operations("sqs").filter((o) => o === "SendMessage").length > sends, 30_000, 100));
    assert.ok(await eventually(async () => Number((await stack.run(["status", "--json"])).json().queue.visible) === 0 && Number((await stack.run(["status", "--json"])).json().queue.inFlight) === 0, 30_000, 500));
    await worker.stop();
    const r = await smoke;
    assert.equal(r.code, 0, r.out + r.err);
    assert.deepEqual([r.json().ok, r.json().evidence], [true, "metric"]);
  });

  it("smoke with no worker: not processed within the timeout, exit 3", async () => {
    const r = await stack.run(["smoke", "--timeout", "4s"]);
    assert.equal(r.code, 3, r.out + r.err);
    assert.match(r.out, /^FAILED: not processed within 4 s \(2 in service, 2 desired\): see kiln status and kiln logs --level warn$/m);
  });

  it("logs: by level, message id and instance, oldest first; --follow prints new lines until Ctrl-C", async () => {
    await stack.putLogLines("i-0other", [
      { level: "error", msg: "SQS call failed", operation: "receive", err: "socket hang up" },
      { level: "debug", msg: "processed", messageId: "m-1", ms: 12 },
    ]);
    const warn = await stack.run(["logs", "--level", "warn", "--since", "10m"]);
    assert.equal(warn.code, 0, warn.err);
    const lines = warn.out.trim().split("\n");
    assert.ok(lines.some((l) => /  error  i-0other  SQS call failed  err="socket hang up"$/.test(l)), warn.out);
    assert.ok(lines.some((l) => /  warn   i-0smoke1  message failed; it returns to the queue  messageId=\S+ err="the message asked to fail \(demo\)"$/.test(l)), warn.out);
    assert.ok(!lines.some((l) => / (debug|info) /.test(l)), "nothing below warn");
    const times = lines.map((l) => l.slice(0, 19));
    assert.deepEqual([...times].sort(), times, "oldest first");

    const one = await stack.run(["logs", "--message-id", "m-1", "--json"]);
    assert.deepEqual(one.out.trim().split("\n").map((l) => JSON.parse(l).msg), ["processed"]);
    const inst = await stack.run(["logs", "--instance", "i-0other", "--json"]);
    assert.deepEqual(inst.out.trim().split("\n").map((l) => JSON.parse(l).source), ["i-0other", "i-0other"]);

    const stop = new AbortController();
    const follow = stack.run(["logs", "--follow", "--since", "1s", "--json"], { signal: stop.signal });
    await new Promise((r) => setTimeout(r, 2_500));
    await stack.putLogLines("i-0other", [{ level: "warn", msg: "a new line", messageId: "m-2" }]);
    let text = "";
    const followed = follow.then((r) => (text = r.out));
    assert.ok(await eventually(async () => {
      // The follower's output is only known when it ends: stop it once the line had time to arrive.
      await new Promise((r) => setTimeout(r, 3_000));
      stop.abort();
      await followed;
      return true;
    }, 10_000));
    const r = await follow;
    assert.equal(r.code, 0);
    assert.ok(text.split("\n").some((l) => l && JSON.parse(l).msg === "a new line"), text);
  });
});
