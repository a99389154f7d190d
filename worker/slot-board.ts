/**
 * What the handler threads and the main thread share when each thread consumes the queue itself
 * (docs/architecture.md, "Handler threads consume"): shared memory, so that nothing on a message's
 * hot path wakes another thread.
 *
 * - The **slot count**: handlers running across every thread. A thread takes a slot before it
 *   starts a message and gives it back when the handler has stopped, so that no more than
 *   MAX_WORKERS handlers ever run at once, however the threads share them.
 * - Each thread's **share**: how many of MAX_WORKERS it may fill, set by the main thread (all of
 *   them in one thread while handlers are cheap, spread over the threads when they compute).
 * - Each thread's **ledger**: every message it holds (received and waiting for a slot, running
 *   since when, or finished with its delete or visibility change not yet acknowledged by SQS), with
 *   its receipt handle and receive count. A thread that dies, or is ended because a handler blocked
 *   it, cannot finish its messages: the main thread reads its ledger and does.
 * - Each thread's **heartbeat**: when its event loop last turned. A stale one means a handler is
 *   running synchronously; the main thread then keeps its messages hidden and, past the processing
 *   timeout, ends it.
 */

/** SQS: "The maximum length of a receipt handle is 1,024 characters" (ASCII). */
export const RECEIPT_MAX = 1024;
/** SQS: "The maximum length of a message ID is 100 characters". */
export const MESSAGE_ID_MAX = 100;
const ENTRY_BYTES = RECEIPT_MAX + MESSAGE_ID_MAX;

const enum Global {
  Max = 0,
  Length = 1,
}

export const enum EntryState {
  Free = 0,
  /** Received, waiting for a slot. */
  Held = 1,
  /** Its handler is running. */
  Running = 2,
  /** Processed: its delete is on its way to SQS. */
  Deleting = 3,
  /** Failed or given back: its visibility change (to `seconds`) is on its way to SQS. */
  Settling = 4,
}

/**
 * The shared slot count, and every thread's share of it. Each thread holds its slots in a counter
 * of its own (a holder, given by the main thread), and the count is their sum: taking or giving
 * back a slot is one atomic operation on the thread's own counter, so a thread ended at any
 * instruction leaves a counter that says exactly what it held, and the main thread clears it.
 */
export class SlotCount {
  private readonly g: Int32Array;
  private readonly shares: Int32Array;
  private readonly holders: Int32Array;

  constructor(
    readonly buffer: SharedArrayBuffer,
    readonly threads: number,
    readonly holderCount: number,
  ) {
    this.g = new Int32Array(buffer, 0, Global.Length);
    this.shares = new Int32Array(buffer, Global.Length * 4, threads);
    this.holders = new Int32Array(buffer, (Global.Length + threads) * 4, holderCount);
  }

  static create(maxWorkers: number, threads: number, holderCount: number): SlotCount {
    const count = new SlotCount(new SharedArrayBuffer((Global.Length + threads + holderCount) * 4), threads, holderCount);
    Atomics.store(count.g, Global.Max, maxWorkers);
    return count;
  }

  get max(): number {
    return Atomics.load(this.g, Global.Max);
  }

  /** Slots held across every holder. */
  get inFlight(): number {
    let n = 0;
    for (let i = 0; i < this.holderCount; i++) n += Atomics.load(this.holders, i);
    return n;
  }

  /**
   * Takes a slot for `holder` if one is free. It counts itself in first and backs out if that made
   * too many: of threads racing for the last slot, the last to count itself in sees every other
   * one, so never more than the count are held (two racers may both back out; they look again).
   */
  tryAcquire(holder: number): boolean {
    const max = Atomics.load(this.g, Global.Max);
    if (this.inFlight >= max) return false;
    Atomics.add(this.holders, holder, 1);
    if (this.inFlight <= max) return true;
    Atomics.sub(this.holders, holder, 1);
    return false;
  }

  release(holder: number): void {
    Atomics.sub(this.holders, holder, 1);
  }

  /** Slots `holder` holds. */
  held(holder: number): number {
    return Atomics.load(this.holders, holder);
  }

  /** Gives back every slot of a holder whose thread is gone, for the next thread to hold with. */
  clear(holder: number): void {
    Atomics.store(this.holders, holder, 0);
  }

  share(thread: number): number {
    return Atomics.load(this.shares, thread);
  }

  setShare(thread: number, n: number): void {
    Atomics.store(this.shares, thread, n);
  }
}

export interface LedgerEntry {
  state: EntryState;
  receiptHandle: string;
  messageId: string;
  receiveCount: number;
  /** When its handler started (Running only), in ms since the epoch. */
  since: number;
  /** The visibility it is being given (Settling only), in seconds. */
  seconds: number;
}

/**
 * One thread's messages and heartbeat. The thread writes, the main thread reads: while the thread
 * lives only the heartbeat and start times (and, while a handler blocks it, what to keep hidden),
 * once it is gone everything. An entry lives from the receive until SQS has acknowledged what
 * became of the message (its delete or its visibility change), so that a thread ended with a
 * delete still on its way leaves the main thread a delete to make, not a message to redeliver.
 */
export class Ledger {
  private readonly state: Int32Array;
  private readonly receives: Int32Array;
  private readonly lengths: Int32Array;
  private readonly idLengths: Int32Array;
  /** Visibility in seconds, for Settling entries. */
  private readonly targets: Int32Array;
  /** Odd while the thread rewrites an entry's handle: the main thread reads a live ledger by it. */
  private readonly versions: Int32Array;
  /** [0]: heartbeat; [1]: time spent in handlers' synchronous code; [2 + i]: entry i's start. */
  private readonly times: Float64Array;
  private readonly bytes: Buffer;
  private free: number[] = [];

  constructor(
    readonly buffer: SharedArrayBuffer,
    readonly capacity: number,
  ) {
    let at = 0;
    const ints = (n: number) => {
      const a = new Int32Array(buffer, at, n);
      at += n * 4;
      return a;
    };
    this.state = ints(capacity);
    this.receives = ints(capacity);
    this.lengths = ints(capacity);
    this.idLengths = ints(capacity);
    this.targets = ints(capacity);
    this.versions = ints(capacity);
    at = Math.ceil(at / 8) * 8;
    this.times = new Float64Array(buffer, at, capacity + 2);
    at += (capacity + 2) * 8;
    this.bytes = Buffer.from(buffer, at, capacity * ENTRY_BYTES);
    for (let i = capacity - 1; i >= 0; i--) this.free.push(i);
  }

  static create(capacity: number): Ledger {
    const ints = 6 * capacity * 4;
    const size = Math.ceil(ints / 8) * 8 + (capacity + 2) * 8 + capacity * ENTRY_BYTES;
    return new Ledger(new SharedArrayBuffer(size), capacity);
  }

  /** Records a received message; -1 when the ledger is full or the handle too long (it is then not tracked). */
  hold(receiptHandle: string, messageId: string, receiveCount: number): number {
    if (receiptHandle.length > RECEIPT_MAX || messageId.length > MESSAGE_ID_MAX) return -1;
    const i = this.free.pop();
    if (i === undefined) return -1;
    const at = i * ENTRY_BYTES;
    Atomics.add(this.versions, i, 1);
    Atomics.store(this.lengths, i, this.bytes.write(receiptHandle, at, RECEIPT_MAX, "latin1"));
    Atomics.store(this.idLengths, i, this.bytes.write(messageId, at + RECEIPT_MAX, MESSAGE_ID_MAX, "latin1"));
    Atomics.store(this.receives, i, receiveCount);
    Atomics.add(this.versions, i, 1);
    Atomics.store(this.state, i, EntryState.Held);
    return i;
  }

  running(i: number, since: number): void {
    if (i < 0) return;
    this.times[2 + i] = since;
    Atomics.store(this.state, i, EntryState.Running);
  }

  /** Processed: held until SQS acknowledges its delete. */
  deleting(i: number): void {
    if (i >= 0) Atomics.store(this.state, i, EntryState.Deleting);
  }

  /** Failed or given back: held until SQS acknowledges its new visibility. */
  settling(i: number, seconds: number): void {
    if (i < 0) return;
    Atomics.store(this.targets, i, seconds);
    Atomics.store(this.state, i, EntryState.Settling);
  }

  drop(i: number): void {
    if (i < 0 || Atomics.load(this.state, i) === EntryState.Free) return;
    Atomics.store(this.state, i, EntryState.Free);
    this.free.push(i);
  }

  beat(now = Date.now()): void {
    this.times[0] = now;
  }

  get heartbeat(): number {
    return this.times[0];
  }

  /** Handlers ran synchronously for `ms` more (the thread adds; the main thread reads how busy handlers keep it). */
  handlerTime(ms: number): void {
    this.times[1] += ms;
  }

  get handlerMs(): number {
    return this.times[1];
  }

  /** Every message held: read by the main thread (an entry the thread is rewriting meanwhile is left out). */
  entries(): LedgerEntry[] {
    const out: LedgerEntry[] = [];
    for (let i = 0; i < this.capacity; i++) {
      const version = Atomics.load(this.versions, i);
      const state = Atomics.load(this.state, i) as EntryState;
      if (state === EntryState.Free || version % 2 === 1) continue;
      const at = i * ENTRY_BYTES;
      const entry: LedgerEntry = {
        state,
        receiptHandle: this.bytes.toString("latin1", at, at + Atomics.load(this.lengths, i)),
        messageId: this.bytes.toString("latin1", at + RECEIPT_MAX, at + RECEIPT_MAX + Atomics.load(this.idLengths, i)),
        receiveCount: Atomics.load(this.receives, i),
        since: this.times[2 + i],
        seconds: Atomics.load(this.targets, i),
      };
      if (Atomics.load(this.versions, i) === version) out.push(entry);
    }
    return out;
  }

  /** The oldest running handler's start, or undefined. */
  oldestRunning(): number | undefined {
    let oldest: number | undefined;
    for (let i = 0; i < this.capacity; i++) {
      if (Atomics.load(this.state, i) !== EntryState.Running) continue;
      const t = this.times[2 + i];
      if (oldest === undefined || t < oldest) oldest = t;
    }
    return oldest;
  }
}
