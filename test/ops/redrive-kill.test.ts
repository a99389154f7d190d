import { strict as assert } from "node:assert";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Message, MessageAttributeValue, SendMessageBatchCommand } from "@aws-sdk/client-sqs";
import { writeLocalFleetRecord } from "../../local/control-state";
import { ROOT } from "../../local/plan";
import { TestSqs } from "../support/sqs";
import { KillMoment, KillProxy } from "./support/kill-proxy";

/** A small seeded generator, so a failing run can be replayed with its seed. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
}

const COUNT = 120;

/** Bodies an ad-hoc shell loop would have mangled, each with its own attributes. */
function letter(i: number): { body: string; attrs: Record<string, MessageAttributeValue> } {
  const bodies = [
    JSON.stringify({ file: `scan-${i}.pdf`, pages: i }),
    `two  spaces, a tab\there, a newline\nand "quotes" ${i}`,
    `日本語の本文 ${i} — ünïcödé`,
    `$(rm -rf /) \`backticks\` $HOME * ${i}`,
    "x".repeat(20_000) + i,
  ];
  return {
    body: bodies[i % bodies.length],
    attrs: {
      seq: { DataType: "Number", StringValue: String(i) },
      tenant: { DataType: "String", StringValue: `tenant-${i % 7}` },
      blob: { DataType: "Binary", BinaryValue: Buffer.from([i % 256, 0, 255, 10]) },
    },
  };
}

const key = (body: string, attrs: Record<string, MessageAttributeValue> | undefined) =>
  JSON.stringify([body, Object.entries(attrs ?? {}).sort().map(([k, v]) => [k, v.DataType, v.StringValue ?? Buffer.from(v.BinaryValue ?? []).toString("hex")])]);

describe("kiln dlq redrive on the embedded SQS, killed at random points (the receive → send → delete loop)", function () {
  this.timeout(240_000);
  let sqs: TestSqs;
  let proxy: KillProxy;
  let dir: string;

  before(async () => {
    sqs = await TestSqs.start();
    proxy = await KillProxy.start(sqs.endpoint);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "kiln-redrive-"));
  });
  after(async () => {
    await proxy?.stop();
    await sqs?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** One `kiln dlq redrive --local` run, as a process; resolves with how it ended. */
  function redrive(): { pid: () => number | undefined; done: Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string }> } {
    const child = spawn(process.execPath, ["--require", require.resolve("tsx/cjs"), path.join("ops", "cli.ts"), "dlq", "redrive", "--stack", "dev", "--local", "--visibility", "1", "--json"], {
      cwd: ROOT,
      env: { ...process.env, KILN_LOCAL_DIR: path.join(dir, "local") },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout!.on("data", (d) => (out += d));
    child.stderr!.on("data", (d) => (out += d));
    return { pid: () => child.pid, done: new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal, out }))) };
  }

  it("loses nothing and keeps every body and attribute, however often it is killed", async () => {
    const seed = Number(process.env.KILN_TEST_SEED ?? Date.now() % 100_000);
    const rnd = random(seed);
    const { url, dlqUrl } = await sqs.queuePair("kiln-dev");
    // The fleet's record, pointing kiln at the SQS through the proxy; this process stands in for the fleet.
    writeLocalFleetRecord(path.join(dir, "local"), {
      stack: "dev", pid: process.pid, startedAt: Date.now(), socket: path.join(dir, "none.sock"), endpoint: proxy.endpoint,
      region: "ap-northeast-1", queueUrl: url, dlqUrl, queueName: "kiln-dev", dlqName: "kiln-dev-dlq", logFile: path.join(dir, "w.log"),
    });
    const sent = new Map<string, number>();
    for (let i = 0; i < COUNT; i += 10) {
      const batch = Array.from({ length: 10 }, (_, j) => letter(i + j));
      await sqs.client.send(new SendMessageBatchCommand({ QueueUrl: dlqUrl, Entries: batch.map((l, j) => ({ Id: String(j), MessageBody: l.body, MessageAttributes: l.attrs })) }));
      for (const l of batch) sent.set(key(l.body, l.attrs), (sent.get(key(l.body, l.attrs)) ?? 0) + 1);
    }

    // Two kills at the moments that matter most, then random ones.
    const plans: { operation?: string; nth: number; moment: KillMoment }[] = [
      { operation: "DeleteMessageBatch", nth: 2, moment: "before-sqs" }, // journalled, not deleted: must not be sent again
      { operation: "SendMessageBatch", nth: 2, moment: "after-sqs" }, // sent, not journalled: the one window for a duplicate
    ];
    const operations = ["ReceiveMessage", "SendMessageBatch", "DeleteMessageBatch", undefined];
    const moments: KillMoment[] = ["before-sqs", "after-sqs", "after-answer"];
    for (let k = 0; k < 6; k++) plans.push({ operation: operations[Math.floor(rnd() * 4)], nth: 1 + Math.floor(rnd() * 4), moment: moments[Math.floor(rnd() * 3)] });

    let kills = 0;
    let sendKills = 0;
    const log: string[] = [];
    for (const plan of plans) {
      const run = redrive();
      let firedOn: string | undefined;
      proxy.arm({ ...plan, pid: run.pid, fired: (op) => (firedOn = op) });
      const end = await run.done;
      proxy.disarm();
      log.push(`${JSON.stringify(plan)} → ${end.signal ?? end.code}${firedOn ? ` at ${firedOn}` : ""}`);
      if (end.signal === "SIGKILL") {
        kills++;
        if (firedOn === "SendMessageBatch" && plan.moment !== "before-sqs") sendKills++;
      } else {
        assert.equal(end.code, 0, `a run that was not killed finishes: ${end.out}\n${log.join("\n")}`);
      }
    }
    const last = await redrive().done;
    assert.equal(last.code, 0, `the last run finishes the job (seed ${seed}):\n${last.out}\n${log.join("\n")}`);
    assert.equal(JSON.parse(last.out).done, true);

    assert.deepEqual(await sqs.depth(dlqUrl), { visible: 0, inFlight: 0, delayed: 0 }, "the DLQ is empty");
    const moved: Message[] = [];
    for (;;) {
      const got = await sqs.receiveAll(url);
      if (!got.length) break;
      moved.push(...got);
    }
    const arrived = new Map<string, number>();
    for (const m of moved) arrived.set(key(m.Body!, m.MessageAttributes), (arrived.get(key(m.Body!, m.MessageAttributes)) ?? 0) + 1);
    const lost = [...sent.keys()].filter((k) => !arrived.has(k));
    const mangled = [...arrived.keys()].filter((k) => !sent.has(k));
    const duplicates = moved.length - COUNT;
    assert.deepEqual([lost.length, mangled.length], [0, 0], `nothing lost, nothing changed (seed ${seed})\n${log.join("\n")}`);
    assert.ok(kills >= 2, `the runs were really killed: ${log.join("\n")}`);
    assert.ok(duplicates <= 10 * sendKills, `duplicates only from a kill between a send and its journal line: ${duplicates} for ${sendKills} such kills (seed ${seed})\n${log.join("\n")}`);
    assert.ok(fs.readdirSync(path.join(dir, "redrive")).length === 0, "journal and lock gone once done");
    console.log(`      ${kills} kills (${sendKills} right after a send reached SQS), ${duplicates} duplicates, seed ${seed}`);
  });
});
