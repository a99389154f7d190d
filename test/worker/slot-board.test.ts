import { strict as assert } from "node:assert";
import * as path from "node:path";
import { Worker } from "node:worker_threads";
import { EntryState, Ledger, RECEIPT_MAX, SlotCount } from "../../worker/slot-board";

const BOARD = path.join(__dirname, "..", "..", "worker", "slot-board.ts");

/** Runs `body` in a real worker thread with the board's module loaded as `board`. */
function inThread(body: string, workerData: unknown): Promise<void> {
  const script = `require(${JSON.stringify(require.resolve("tsx/cjs"))});
    const board = require(${JSON.stringify(BOARD)});
    const { workerData } = require("node:worker_threads");
    ${body}`;
  return new Promise((resolve, reject) => {
    const w = new Worker(script, { eval: true, workerData });
    w.once("error", reject);
    w.once("exit", (code) => (code === 0 ? resolve() : reject(new Error(`thread exited ${code}`))));
  });
}

describe("the board the handler threads share with the main thread (shared memory)", function () {
  this.timeout(60_000);

  it("never lets threads that race for slots hold more than the count, and gets every slot back", async () => {
    const slots = SlotCount.create(3, 4, 4);
    // A shared high-water mark of slots held at once, written by the racing threads themselves.
    const peak = new Int32Array(new SharedArrayBuffer(8));
    const race = `
      const slots = new board.SlotCount(workerData.slots, 4, 4);
      const peak = new Int32Array(workerData.peak);
      let taken = 0;
      while (taken < 5000) {
        if (!slots.tryAcquire(workerData.holder)) continue;
        taken++;
        const now = Atomics.add(peak, 1, 1) + 1;
        for (let seen = Atomics.load(peak, 0); now > seen; seen = Atomics.load(peak, 0)) Atomics.compareExchange(peak, 0, seen, now);
        for (let spin = 0; spin < 2000; spin++) Atomics.load(peak, 1);
        Atomics.sub(peak, 1, 1);
        slots.release(workerData.holder);
      }`;
    await Promise.all(Array.from({ length: 4 }, (_, holder) => inThread(race, { slots: slots.buffer, peak: peak.buffer, holder })));
    assert.ok(peak[0] <= 3, `${peak[0]} slots held at once, of 3`);
    assert.ok(peak[0] >= 2, "the threads did race");
    assert.equal(slots.inFlight, 0);
  });

  it("keeps what a thread recorded readable after the thread is gone: receipts, ids, receive counts, start times", async () => {
    const ledger = Ledger.create(8);
    const longest = "r".repeat(RECEIPT_MAX);
    await inThread(
      `const ledger = new board.Ledger(workerData.ledger, 8);
       const a = ledger.hold("receipt-a", "id-a", 1);
       const b = ledger.hold(workerData.longest, "id-b", 3);
       const c = ledger.hold("receipt-c", "id-c", 2);
       ledger.running(b, 1234.5);
       ledger.drop(a);
       ledger.deleting(ledger.hold("receipt-d", "id-d", 1));
       ledger.settling(ledger.hold("receipt-e", "id-e", 4), 600);
       if (ledger.hold(workerData.longest + "r", "too-long", 1) !== -1) throw new Error("a handle past SQS's limit was taken");
       ledger.beat(99);`,
      { ledger: ledger.buffer, longest },
    );
    const entries = ledger.entries().sort((x, y) => x.messageId.localeCompare(y.messageId));
    assert.deepEqual(
      entries.map((e) => [e.messageId, e.receiptHandle === longest ? "longest" : e.receiptHandle, e.receiveCount, e.state]),
      [
        ["id-b", "longest", 3, EntryState.Running],
        ["id-c", "receipt-c", 2, EntryState.Held],
        ["id-d", "receipt-d", 1, EntryState.Deleting],
        ["id-e", "receipt-e", 4, EntryState.Settling],
      ],
    );
    assert.equal(entries[0].since, 1234.5);
    assert.equal(entries[3].seconds, 600, "a failed message's retry delay, for the main thread to give it");
    assert.equal(ledger.oldestRunning(), 1234.5);
    assert.equal(ledger.heartbeat, 99);
  });

  it("gives back exactly what a thread held when it is ended at any instruction, so that no slot leaks", async () => {
    // One slot: a single slot lost to an ended thread would stop the steady thread for good.
    const slots = SlotCount.create(1, 2, 3);
    const churn = `
      const slots = new board.SlotCount(workerData.slots, 2, 3);
      const { parentPort } = require("node:worker_threads");
      parentPort?.postMessage("up");
      for (let taken = 0; taken !== workerData.stopAfter; ) {
        if (!slots.tryAcquire(workerData.holder)) continue;
        taken++;
        slots.release(workerData.holder);
      }`;
    // One thread runs to its end while others are ended mid-loop, each after a random while; the
    // main thread then gives back what the ended one's counter says, as the pool does.
    const steady = inThread(churn, { slots: slots.buffer, holder: 0, stopAfter: 200_000 });
    for (let round = 0; round < 20; round++) {
      const holder = 1 + (round % 2);
      const script = `require(${JSON.stringify(require.resolve("tsx/cjs"))});
        const board = require(${JSON.stringify(BOARD)});
        const { workerData } = require("node:worker_threads");
        ${churn}`;
      const w = new Worker(script, { eval: true, workerData: { slots: slots.buffer, holder, stopAfter: -1 } });
      await new Promise((r) => w.once("message", r));
      await new Promise((r) => setTimeout(r, Math.random() * 20));
      await w.terminate();
      assert.ok(slots.held(holder) === 0 || slots.held(holder) === 1, `an ended thread held ${slots.held(holder)} slots, of the 1 it takes at a time`);
      slots.clear(holder);
    }
    await steady;
    assert.equal(slots.inFlight, 0, "every slot came back");
  });

  it("gives a full ledger's overflow no entry rather than overwriting one", () => {
    const ledger = Ledger.create(2);
    assert.notEqual(ledger.hold("a", "1", 1), -1);
    assert.notEqual(ledger.hold("b", "2", 1), -1);
    assert.equal(ledger.hold("c", "3", 1), -1);
    assert.deepEqual(ledger.entries().map((e) => e.receiptHandle).sort(), ["a", "b"]);
  });
});
