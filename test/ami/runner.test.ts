import { strict as assert } from "node:assert";
import { Runner } from "../../ami/runner";
import { Step } from "../../ami/step";

/** A toy cloud: steps create named things in it, cleanups remove them. */
interface World {
  live: Set<string>;
  order: string[];
  early?: string;
}

function creating(name: string, opts: { fail?: boolean; hang?: boolean; failCleanup?: boolean } = {}): Step<World> {
  return {
    name,
    title: `create ${name}`,
    async run(w, ctx) {
      w.live.add(name);
      w.order.push(`run ${name}`);
      ctx.log(`created ${name}`);
      if (opts.hang) {
        await new Promise((_, reject) => ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason), { once: true }));
      }
      if (opts.fail) throw new Error(`${name} broke`);
    },
    async cleanup(w, ctx) {
      assert.equal(ctx.signal.aborted, false, "cleanups get a live signal, even after an interrupt");
      w.order.push(`cleanup ${name}`);
      if (opts.failCleanup) throw new Error(`could not delete ${name}`);
      w.live.delete(name);
    },
  };
}

const world = (): World => ({ live: new Set(), order: [] });

describe("the step runner (Packer's multistep)", () => {
  it("runs steps in order, then undoes every temporary one in reverse", async () => {
    const w = world();
    const lines: string[] = [];
    const runner = new Runner([creating("a"), creating("b"), creating("c")]);
    runner.on("log", (step, line) => lines.push(`${step}: ${line}`));
    const report = await runner.run(w);
    assert.equal(report.ok, true);
    assert.deepEqual(w.order, ["run a", "run b", "run c", "cleanup c", "cleanup b", "cleanup a"]);
    assert.deepEqual([...w.live], []);
    assert.deepEqual(report.steps.map((s) => s.status), ["done", "done", "done"]);
    assert.deepEqual(lines, ["a: created a", "b: created b", "c: created c"]);
  });

  for (const failing of ["a", "b", "c"]) {
    it(`on a failure in ${failing}: stops there, undoes it and every earlier step, reports the step`, async () => {
      const w = world();
      const steps = ["a", "b", "c"].map((n) => creating(n, { fail: n === failing }));
      const report = await new Runner(steps).run(w);
      assert.equal(report.ok, false);
      assert.equal(report.failure?.step, failing);
      assert.match(report.failure!.error.message, new RegExp(`${failing} broke`));
      assert.deepEqual([...w.live], [], "nothing left behind");
      assert.equal(w.order.filter((o) => o.startsWith("run")).length, "abc".indexOf(failing) + 1, "no step after the failure ran");
      assert.deepEqual(report.steps.map((s) => s.status).slice(0, "abc".indexOf(failing) + 1).at(-1), "failed");
    });
  }

  it("with onError=abort keeps what a failed run created, for debugging", async () => {
    const w = world();
    const report = await new Runner([creating("a"), creating("b", { fail: true })], { onError: "abort" }).run(w);
    assert.equal(report.ok, false);
    assert.deepEqual([...w.live].sort(), ["a", "b"]);
  });

  it("on an interrupt during a step: aborts that step through its signal, then cleans up everything started", async () => {
    const w = world();
    const abort = new AbortController();
    const runner = new Runner([creating("a"), creating("b", { hang: true }), creating("c")]);
    runner.on("step-start", (s) => s.name === "b" && setTimeout(() => abort.abort(), 10));
    const report = await runner.run(w, abort);
    assert.equal(report.ok, false);
    assert.equal(report.failure, undefined, "an interrupt is not a step failure");
    assert.ok(report.interrupted);
    assert.deepEqual(report.steps.map((s) => s.status), ["done", "cancelled", "not run"]);
    assert.deepEqual([...w.live], []);
  });

  it("traps SIGTERM and SIGINT while running, cleans up even with onError=abort, and lets go of them afterwards", async () => {
    const before = process.listenerCount("SIGTERM");
    const w = world();
    const runner = new Runner([creating("a"), creating("b", { hang: true })], { trapSignals: true, onError: "abort" });
    runner.on("step-start", (s) => s.name === "b" && setImmediate(() => process.emit("SIGTERM", "SIGTERM")));
    const report = await runner.run(w);
    assert.equal(report.interrupted, "SIGTERM");
    assert.deepEqual([...w.live], []);
    assert.equal(process.listenerCount("SIGTERM"), before);
  });

  it("a second signal during cleanup does not cut the cleanup short", async () => {
    const w = world();
    const slowCleanup: Step<World> = {
      ...creating("slow"),
      async cleanup(wd) {
        process.emit("SIGINT", "SIGINT");
        await new Promise((r) => setTimeout(r, 20));
        wd.live.delete("slow");
      },
    };
    const runner = new Runner([slowCleanup, creating("b", { hang: true })], { trapSignals: true });
    const signals: string[] = [];
    runner.on("signal", (sig, during) => signals.push(`${sig} ${during}`));
    runner.on("step-start", (s) => s.name === "b" && setImmediate(() => process.emit("SIGINT", "SIGINT")));
    const report = await runner.run(w);
    assert.deepEqual(signals, ["SIGINT step", "SIGINT cleanup"]);
    assert.deepEqual([...w.live], []);
    assert.equal(report.steps[0].cleanup?.ok, true);
  });

  it("goes on with the other cleanups when one fails, and reports what was left behind", async () => {
    const w = world();
    const report = await new Runner([creating("a"), creating("b", { failCleanup: true }), creating("c", { fail: true })]).run(w);
    assert.deepEqual([...w.live], ["b"]);
    assert.deepEqual(report.leftBehind, [{ step: "b", error: "could not delete b" }]);
    assert.deepEqual(w.order.slice(-3), ["cleanup c", "cleanup b", "cleanup a"]);
  });

  it("finishes early, successfully, when a step says there is nothing left to do", async () => {
    const w = world();
    const reuse: Step<World> = { name: "reuse", title: "reuse", finishEarly: (s) => s.early, run: async () => undefined };
    w.early = "image ami-1 has the same content hash";
    const report = await new Runner([creating("a"), reuse, creating("c")]).run(w);
    assert.equal(report.ok, true);
    assert.equal(report.finishedEarly, "image ami-1 has the same content hash");
    assert.deepEqual(report.steps.map((s) => s.status), ["done", "done", "skipped"]);
    assert.deepEqual(w.order, ["run a", "cleanup a"]);
  });
});
