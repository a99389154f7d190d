import { strict as assert } from "node:assert";
import * as path from "node:path";
import type { Message } from "@aws-sdk/client-sqs";
import { DEMO_HANDLER } from "../../local/plan";

type Handle = (m: Message, ctx: { signal: AbortSignal }) => Promise<void>;

/** Loads the demo handler afresh, with DEMO_AVG_MS as given. */
function load(avgMs?: string): Handle {
  const saved = process.env.DEMO_AVG_MS;
  if (avgMs === undefined) delete process.env.DEMO_AVG_MS;
  else process.env.DEMO_AVG_MS = avgMs;
  try {
    delete require.cache[require.resolve(DEMO_HANDLER)];
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return (require(DEMO_HANDLER) as { handle: Handle }).handle;
  } finally {
    if (saved === undefined) delete process.env.DEMO_AVG_MS;
    else process.env.DEMO_AVG_MS = saved;
  }
}

const run = (handle: Handle, body: string, signal = new AbortController().signal) => handle({ Body: body }, { signal });

describe("the demo handler (worker/examples/demo-handler.js)", () => {
  it("is where the bundle and Pulumi.dev.yaml expect it", () => {
    assert.equal(path.relative(path.join(__dirname, "..", ".."), DEMO_HANDLER), path.join("worker", "examples", "demo-handler.js"));
  });

  it("takes from 0 to twice DEMO_AVG_MS, or what the body asks", async () => {
    const handle = load("20");
    for (let i = 0; i < 5; i++) {
      const t = Date.now();
      await run(handle, JSON.stringify({ demo: i }));
      assert.ok(Date.now() - t < 200, "at most 40 ms, with slack for a busy machine");
    }
    const t = Date.now();
    await run(handle, JSON.stringify({ ms: 120 }));
    assert.ok(Date.now() - t >= 115);
    await run(handle, "not json");
  });

  it("fails a message that asks to", async () => {
    const handle = load("1");
    await assert.rejects(run(handle, JSON.stringify({ demo: 1, fail: true })), /asked to fail/);
    await assert.rejects(run(handle, "poison"), /asked to fail/);
  });

  it("stops at once when the worker aborts it", async () => {
    const handle = load();
    const abort = new AbortController();
    const t = Date.now();
    const done = run(handle, JSON.stringify({ ms: 5_000 }), abort.signal);
    setTimeout(() => abort.abort(new Error("processing timeout")), 20);
    await assert.rejects(done, /processing timeout/);
    assert.ok(Date.now() - t < 1_000);
  });

  it("refuses a DEMO_AVG_MS that is not a number when loaded", () => {
    assert.throws(() => load("fast"), /DEMO_AVG_MS must be a number/);
  });
});
