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
 * - Each thread's **ledger**: every message it holds (received and waiting for a slot, or running
 *   since when), with its receipt handle and receive count. A thread that dies, or is ended because
 *   a handler blocked it, cannot hand its messages back: the main thread reads its ledger and does.
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
  InFlight = 0,
  Max = 1,
  Length = 2,
}

export const enum EntryState {
  Free = 0,
  /** Received, waiting for a slot. */
  Held = 1,
  /** Its handler is running. */
  Running = 2,
}

/** The shared slot count, and every thread's share of it. */
export class SlotCount {
  private readonly g: Int32Array;
  private readonly shares: Int32Array;

  constructor(
    readonly buffer: SharedArrayBuffer,
    readonly threads: number,
  ) {
    this.g = new Int32Array(buffer, 0, Global.Length);
    this.shares = new Int32Array(buffer, Global.Length * 4, threads);
  }

  static create(maxWorkers: number, threads: number): SlotCount {
    const count = new SlotCount(new SharedArrayBuffer((Global.Length + threads) * 4), threads);
    Atomics.store(count.g, Global.Max, maxWorkers);
    return count;
  }

  get max(): number {
    return Atomics.load(this.g, Global.Max);
  }

  get inFlight(): number {
    return Atomics.load(this.g, Global.InFlight);
  }

  /** Takes a slot if one is free. */
  tryAcquire(): boolean {
    const max = Atomics.load(this.g, Global.Max);
    for (;;) {
      const now = Atomics.load(this.g, Global.InFlight);
      if (now >= max) return false;
      if (Atomics.compareExchange(this.g, Global.InFlight, now, now + 1) === now) return true;
    }
  }

  release(n = 1): void {
    Atomics.sub(this.g, Global.InFlight, n);
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
}

/**
 * One thread's messages and heartbeat. The thread writes, the main thread reads: while the thread
 * lives only the heartbeat and start times, once it is gone (or frozen) everything.
 */
export class Ledger {
  private readonly state: Int32Array;
  private readonly receives: Int32Array;
  private readonly lengths: Int32Array;
  private readonly idLengths: Int32Array;
  /** [0]: heartbeat; [1]: time spent in handlers' synchronous code; [2 + i]: entry i's start. */
  private readonly times: Float64Array;
  private readonly bytes: Buffer;
  /** Slots this thread holds of the shared count: given back for it when it dies. */
  private readonly held: Int32Array;
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
    this.held = ints(2);
    this.state = ints(capacity);
    this.receives = ints(capacity);
    this.lengths = ints(capacity);
    this.idLengths = ints(capacity);
    at = Math.ceil(at / 8) * 8;
    this.times = new Float64Array(buffer, at, capacity + 2);
    at += (capacity + 2) * 8;
    this.bytes = Buffer.from(buffer, at, capacity * ENTRY_BYTES);
    for (let i = capacity - 1; i >= 0; i--) this.free.push(i);
  }

  static create(capacity: number): Ledger {
    const ints = (2 + 4 * capacity) * 4;
    const size = Math.ceil(ints / 8) * 8 + (capacity + 2) * 8 + capacity * ENTRY_BYTES;
    return new Ledger(new SharedArrayBuffer(size), capacity);
  }

  /** Records a received message; -1 when the ledger is full or the handle too long (it is then not tracked). */
  hold(receiptHandle: string, messageId: string, receiveCount: number): number {
    if (receiptHandle.length > RECEIPT_MAX || messageId.length > MESSAGE_ID_MAX) return -1;
    const i = this.free.pop();
    if (i === undefined) return -1;
    const at = i * ENTRY_BYTES;
    Atomics.store(this.lengths, i, this.bytes.write(receiptHandle, at, RECEIPT_MAX, "latin1"));
    Atomics.store(this.idLengths, i, this.bytes.write(messageId, at + RECEIPT_MAX, MESSAGE_ID_MAX, "latin1"));
    Atomics.store(this.receives, i, receiveCount);
    Atomics.store(this.state, i, EntryState.Held);
    return i;
  }

  running(i: number, since: number): void {
    if (i < 0) return;
    this.times[2 + i] = since;
    Atomics.store(this.state, i, EntryState.Running);
  }

  drop(i: number): void {
    if (i < 0 || Atomics.load(this.state, i) === EntryState.Free) return;
    Atomics.store(this.state, i, EntryState.Free);
    this.free.push(i);
  }

  /** The thread took (+1) or gave back (-1) a slot of the shared count. */
  slots(delta: number): void {
    Atomics.add(this.held, 0, delta);
  }

  /** Slots of the shared count this thread still holds. */
  get slotsHeld(): number {
    return Atomics.load(this.held, 0);
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

  /** Every message held: read by the main thread. */
  entries(): LedgerEntry[] {
    const out: LedgerEntry[] = [];
    for (let i = 0; i < this.capacity; i++) {
      const state = Atomics.load(this.state, i) as EntryState;
      if (state === EntryState.Free) continue;
      const at = i * ENTRY_BYTES;
      out.push({
        state,
        receiptHandle: this.bytes.toString("latin1", at, at + Atomics.load(this.lengths, i)),
        messageId: this.bytes.toString("latin1", at + RECEIPT_MAX, at + RECEIPT_MAX + Atomics.load(this.idLengths, i)),
        receiveCount: Atomics.load(this.receives, i),
        since: this.times[2 + i],
      });
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
