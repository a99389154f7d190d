import type { Logger } from "./log";
import { descendants, processTable, residentBytes } from "./memory";
import type { HandlerRuntime, RecycleUnit } from "./runtime";

export interface RecycleLimits {
  /** Messages a handler thread or app process finishes before it is replaced (WORKER_MAX_MESSAGES). */
  maxMessages?: number;
  /** Resident memory of the worker and everything it runs (WORKER_MAX_RSS_MB). */
  maxRssMb?: number;
  /** Age at which a handler thread or app process is replaced (WORKER_MAX_LIFETIME). */
  maxLifetimeMs?: number;
}

/**
 * The seeds' nightly cron restart, done safely and in place: a handler thread or app process past a
 * limit is replaced once its messages have finished, one at a time so the others keep working, and
 * the worker process itself (and systemd's restart budget) is left alone. Memory is checked after
 * every message, before its slot is refilled, so the overshoot is about one message's growth.
 *
 * In command mode every message is a fresh process already: the limits apply to the worker itself,
 * which then drains and exits with EXIT.RECYCLED. So does a worker whose own memory, beyond what
 * its threads and app processes hold, is above the limit: what leaks is not the handler.
 */
export class Recycler {
  private handled = 0;
  private readonly startedAt = Date.now();
  private timer?: NodeJS.Timeout;
  /** Each app process's tree as of the last full scan: its own pid and its children's. */
  private trees = new Map<RecycleUnit, number[]>();
  private exited = false;

  constructor(
    private readonly runtime: HandlerRuntime,
    private readonly limits: RecycleLimits,
    private readonly log: Logger,
    /** The worker itself must be recycled: drain and exit. */
    private readonly recycleWorker: (why: string) => void,
    private readonly checkMs = 1_000,
  ) {}

  get active(): boolean {
    return Boolean(this.limits.maxMessages || this.limits.maxRssMb || this.limits.maxLifetimeMs);
  }

  start(): void {
    if (!this.active) return;
    this.timer = setInterval(() => this.check(true), this.checkMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.exited = true;
  }

  /** A message finished: count it and look again, before its slot takes another. */
  messageDone(): void {
    this.handled++;
    if (this.active) this.check(false);
  }

  private check(full: boolean): void {
    if (this.exited) return;
    const { maxMessages, maxLifetimeMs, maxRssMb } = this.limits;
    if (this.runtime.kind === "command") {
      const rss = process.memoryUsage.rss();
      if (maxMessages && this.handled >= maxMessages) this.workerDone(`handled ${this.handled} messages (WORKER_MAX_MESSAGES)`);
      else if (maxLifetimeMs && Date.now() - this.startedAt >= maxLifetimeMs) this.workerDone(`ran ${maxLifetimeMs / 1000} s (WORKER_MAX_LIFETIME)`);
      else if (maxRssMb && rss > maxRssMb * 2 ** 20) this.workerDone(`resident memory ${mb(rss)} MiB above WORKER_MAX_RSS_MB (${maxRssMb})`);
      return;
    }
    const units = this.runtime.units();
    // A unit takes no message past its count, even while another is being replaced.
    for (const u of units) {
      if (maxMessages && !u.retiring && u.handled >= maxMessages) this.recycle(u, `it finished ${u.handled} messages (WORKER_MAX_MESSAGES)`);
    }
    // Age and memory replace one at a time: the others keep the queue moving while it restarts.
    if (units.some((u) => u.retiring)) return;
    const now = Date.now();
    const old = maxLifetimeMs ? units.find((u) => now - u.startedAt >= maxLifetimeMs) : undefined;
    if (old) return this.recycle(old, `it ran ${Math.round((now - old.startedAt) / 1000)} s (WORKER_MAX_LIFETIME)`);
    if (maxRssMb) this.checkMemory(units, maxRssMb, full);
  }

  private checkMemory(units: RecycleUnit[], maxRssMb: number, full: boolean): void {
    let total: number;
    if (full) {
      const table = processTable();
      total = residentBytes(descendants(table, process.pid), table);
      this.trees = new Map();
      for (const u of units) {
        if (u.pid === undefined) continue;
        const tree = descendants(table, u.pid);
        this.trees.set(u, tree);
        u.rssBytes = residentBytes(tree, table);
      }
    } else {
      // The worker (its threads included) and each app process's tree as last seen: a few small reads.
      total = process.memoryUsage.rss();
      for (const u of units) {
        const tree = this.trees.get(u) ?? (u.pid !== undefined ? [u.pid] : []);
        if (tree.length) total += u.rssBytes = residentBytes(tree);
      }
    }
    const limit = maxRssMb * 2 ** 20;
    if (total <= limit) return;
    // What no handler thread or app process accounts for is the worker's own: replacing them cannot shrink it.
    const own = total - units.reduce((sum, u) => sum + u.memoryBytes(), 0);
    if (own > limit) {
      return this.workerDone(
        `resident memory ${mb(total)} MiB is above WORKER_MAX_RSS_MB (${maxRssMb}), ${mb(own)} MiB of it the worker's own, not a handler's`,
      );
    }
    const biggest = units.reduce<RecycleUnit | undefined>((b, u) => (!b || u.memoryBytes() > b.memoryBytes() ? u : b), undefined);
    if (biggest) this.recycle(biggest, `the worker's resident memory ${mb(total)} MiB is above WORKER_MAX_RSS_MB (${maxRssMb}) and it is the largest`);
  }

  private recycle(unit: RecycleUnit, why: string): void {
    this.log.info({ unit: unit.label, handled: unit.handled, memoryMb: mb(unit.memoryBytes()) }, `recycling ${unit.label}: ${why}`);
    this.runtime.recycle(unit, why);
  }

  private workerDone(why: string): void {
    this.stop();
    this.recycleWorker(why);
  }
}

const mb = (bytes: number) => Math.round(bytes / 2 ** 20);
