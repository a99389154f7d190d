import { strict as assert } from "node:assert";
import { desiredCapacity } from "../../infra/scaling-rule";
import { estimate, TARGET_TRACKING_SCALE_IN_MINUTES } from "../../ops/estimate";
import { duration, longDuration } from "../../ops/format";
import { parseLogLine } from "../../ops/log-lines";

describe("kiln eta's estimate (ops/estimate.ts)", () => {
  const prod = { target: 3000, min: 1, max: 5 };

  it("gives the seeds' three answers", () => {
    assert.equal(longDuration(estimate({ backlog: 256_196, perInstance: 122, instances: 1, rule: prod }).minutes * 60), "35 h 00 min (35.0 h)");
    assert.equal(longDuration(estimate({ backlog: 256_196, perInstance: 200, instances: 3, rule: prod }).minutes * 60), "7 h 07 min (7.1 h)");
    const rule = estimate({ backlog: 256_196, perInstance: 200, rule: prod });
    assert.equal(duration(rule.minutes * 60), "4 h 16 min");
    assert.deepEqual(rule.segments.map((s) => s.instances), [5], "the tail (12,000 at 1,000 a minute) ends before target tracking's 15 minutes");
  });

  it("asks the shared rule at every step, and scales in only after 15 minutes of low backlog", () => {
    const e = estimate({ backlog: 60_000, perInstance: 20, rule: prod });
    for (const s of e.segments.slice(0, 1)) assert.equal(s.instances, desiredCapacity(s.backlog, 3000, 1, 5));
    for (let i = 1; i < e.segments.length; i++) {
      const s = e.segments[i];
      assert.ok(s.instances < e.segments[i - 1].instances, "only down, once it started");
      assert.ok(s.at - e.segments[i - 1].at >= TARGET_TRACKING_SCALE_IN_MINUTES - 1e-9, "held 15 minutes at least");
      assert.ok(s.instances >= desiredCapacity(s.backlog, 3000, 1, 5), "never below what the rule asks");
    }
    assert.ok(Math.abs(e.instanceHours * 60 * 20 - 60_000) < 1e-6, "instance-minutes × rate is the backlog");
  });

  it("nothing to do is done at once; nothing to do it with is never done", () => {
    assert.equal(estimate({ backlog: 0, perInstance: 200, rule: prod }).minutes, 0);
    assert.equal(estimate({ backlog: 10, perInstance: 200, rule: { target: 3000, min: 0, max: 0 } }).minutes, Infinity);
  });
});

describe("kiln's reading of worker log lines (ops/log-lines.ts)", () => {
  it("reads pino lines, the journal's wrapper, the local fleet's output lines and plain text", () => {
    const pino = parseLogLine('{"level":"warn","time":"2026-01-05T12:00:03.000Z","pid":7,"msg":"message failed; it returns to the queue","messageId":"m-1","err":"boom","worker":"w2"}', 0);
    assert.deepEqual([pino.level, pino.time, pino.msg, pino.messageId, pino.err, pino.source], ["warn", Date.parse("2026-01-05T12:00:03.000Z"), "message failed; it returns to the queue", "m-1", "boom", "w2"]);
    const journal = parseLogLine(JSON.stringify({ MESSAGE: '{"level":"error","msg":"SQS call failed","err":"reset"}', _SYSTEMD_UNIT: "kiln-worker.service" }), 5, "i-1");
    assert.deepEqual([journal.level, journal.msg, journal.source], ["error", "SQS call failed", "i-1"]);
    assert.equal(parseLogLine('{"level":"WARNING","msg":"python"}', 0).level, "warn", "the seeds' Python level name");
    const plain = parseLogLine("Traceback (most recent call last):", 9, "i-2");
    assert.deepEqual([plain.level, plain.msg, plain.time], [undefined, "Traceback (most recent call last):", 9]);
  });
});
