import { EventEmitter } from "node:events";
import type { Message } from "@aws-sdk/client-sqs";
import { AppProcess, AppProcessOptions } from "./app-process";
import type { StopSignal } from "./consumer";
import type { Logger } from "./log";
import { checkProgram } from "./program";
import { HandlerRuntime, RecycleUnit, RuntimeEvents, SlotWaiters } from "./runtime";
import { WorkerConfigError } from "./settings";

export interface AppPoolOptions extends Omit<AppProcessOptions, "slot"> {
  /** One process per slot: messages in the app at once. */
  maxWorkers: number;
  /** How long a process may take to answer its health check. */
  startTimeoutMs: number;
  log: Logger;
}

/** Restarts of a process that keeps dying wait 1 s, doubling to this. */
const MAX_RESTART_DELAY_MS = 30_000;

interface Slot {
  index: number;
  proc?: AppProcess;
  ready: boolean;
  busy: boolean;
  /** Deaths since its process last finished a message: restarts wait longer each time. */
  deaths: number;
  /** Being replaced (recycled, killed, restarting): ignore its exit. */
  replacing: boolean;
}

/**
 * WORKER_APP: a long-lived app in any language, one process per slot, each on its own port, fed
 * one message at a time in Elastic Beanstalk sqsd's shape. No message reaches a process before it
 * answers its health check. A process that does not answer within the processing timeout is killed
 * with everything it started and restarted, and only its own message is affected; one that dies is
 * restarted with backoff; one that is recycled finishes its message first.
 */
export class AppPool extends EventEmitter<RuntimeEvents> implements HandlerRuntime {
  readonly kind = "app";
  private readonly slots: Slot[];
  private stopping = false;
  /** Every slot answered once: from then on a process that dies is restarted, not a start-up failure. */
  private started = false;
  /** When a slot was last ready; the app is given up on after a long spell with none. */
  private lastReadyAt = Date.now();
  private watchdog?: NodeJS.Timeout;
  private readonly waiters = new SlotWaiters();
  /** Processes being started: stop() waits for them too. */
  private readonly launching = new Set<Promise<void>>();

  constructor(private readonly o: AppPoolOptions) {
    super();
    this.slots = Array.from({ length: o.maxWorkers }, (_, index) => ({ index, ready: false, busy: false, deaths: 0, replacing: false }));
  }

  async start(): Promise<void> {
    checkProgram("WORKER_APP", this.o.command, this.o.env);
    const deadline = Date.now() + this.o.startTimeoutMs;
    const started = await Promise.allSettled(this.slots.map((s) => this.launch(s, deadline)));
    const failed = started.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failed) {
      await this.stop();
      const seconds = this.o.startTimeoutMs / 1000;
      throw new WorkerConfigError("WORKER_APP", `${(failed.reason as Error).message} (WORKER_APP_START_TIMEOUT is ${seconds} s)`);
    }
    this.started = true;
    this.lastReadyAt = Date.now();
    // With no process ready for this long, the app is not coming back: let systemd decide.
    const giveUpMs = Math.max(this.o.startTimeoutMs * 2, 60_000);
    this.watchdog = setInterval(() => {
      if (this.stopping || this.slots.some((s) => s.ready)) this.lastReadyAt = Date.now();
      else if (Date.now() - this.lastReadyAt > giveUpMs) {
        this.emit("fatal", new Error(`no process of WORKER_APP has been ready for ${Math.round(giveUpMs / 1000)} s`));
      }
    }, 1_000);
    this.watchdog.unref();
  }

  capacity(): number {
    return this.slots.filter((s) => s.ready && !s.proc!.retiring).length;
  }

  units(): RecycleUnit[] {
    // A process being replaced still counts (retiring) until it is gone and its memory with it.
    return this.slots.filter((s) => s.proc).map((s) => s.proc!);
  }

  pids(): number[] {
    return this.slots.map((s) => s.proc?.child.pid).filter((p): p is number => p !== undefined);
  }

  recycle(unit: RecycleUnit, why: string): void {
    const slot = this.slots.find((s) => s.proc === unit);
    if (!slot || slot.proc!.retiring) return;
    slot.proc!.retiring = true;
    slot.proc!.retireWhy = why;
    if (!slot.busy) void this.replace(slot, why, false);
  }

  readonly process = async (message: Message, signal: StopSignal): Promise<void> => {
    let slot: Slot | undefined;
    while (!(slot = this.slots.find((s) => s.ready && !s.busy && !s.proc!.retiring))) await this.waiters.wait(signal);
    const proc = slot.proc!;
    slot.busy = true;
    proc.current = message;
    // The processing timeout, or the end of a drain: the process holding the message is stopped with
    // everything it started, and it alone; the other slots carry on.
    let killed: Promise<void> | undefined;
    const onAbort = () => (killed = this.replace(slot, `its message ${message.MessageId} was aborted (${(signal.reason as Error).name})`, false));
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      await proc.post(message);
      proc.handled++;
      slot.deaths = 0;
    } catch (e) {
      if (killed) await killed;
      throw e;
    } finally {
      signal.removeEventListener("abort", onAbort);
      proc.current = undefined;
      slot.busy = false;
      if (proc.retiring && slot.proc === proc && !slot.replacing) void this.replace(slot, proc.retireWhy, false);
      this.waiters.notify();
    }
  };

  /** The worker is draining: processes that end are not replaced any more. */
  windDown(): void {
    this.stopping = true;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.watchdog);
    await Promise.all(
      this.slots.map(async (s) => {
        s.ready = false;
        s.replacing = true;
        await s.proc?.stop();
      }),
    );
    // A process still starting was stopped above, or stops itself the moment it exists.
    await Promise.allSettled([...this.launching]);
  }

  /** Starts a process in the slot and waits for its health check, by `deadline`. */
  private launch(slot: Slot, deadline: number): Promise<void> {
    const launched = this.startProcess(slot, deadline);
    this.launching.add(launched);
    void launched.catch(() => undefined).finally(() => this.launching.delete(launched));
    return launched;
  }

  private async startProcess(slot: Slot, deadline: number): Promise<void> {
    const proc = await AppProcess.launch({ ...this.o, slot: slot.index });
    slot.proc = proc;
    if (this.stopping) return proc.stop();
    slot.replacing = false;
    void proc.exited.then(({ code, signal }) => this.onExit(slot, proc, code, signal));
    try {
      await proc.waitHealthy(deadline);
    } catch (e) {
      const tail = proc.stderrTail();
      await proc.stop();
      throw new Error(`app slot ${slot.index} ${(e as Error).message}${tail.length ? `: ${tail.slice(-3).join(" / ")}` : ""}`);
    }
    if (this.stopping) return proc.stop();
    slot.ready = true;
    this.o.log.info({ slot: slot.index, appPid: proc.child.pid, port: proc.port, ms: Date.now() - proc.startedAt }, "app process ready");
    this.emit("capacity");
    this.waiters.notify();
  }

  private onExit(slot: Slot, proc: AppProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.stopping || !this.started || slot.proc !== proc || slot.replacing) return;
    slot.ready = false;
    if (code === 126 || code === 127) {
      this.emit("config-error", new WorkerConfigError("WORKER_APP", `could not be run by /bin/sh (exit ${code}): ${proc.stderrTail().join(" / ")}`));
      return;
    }
    this.o.log.error(
      { slot: slot.index, appPid: proc.child.pid, exitCode: code, signal, stderr: proc.stderrTail() },
      "an app process died: it is restarted",
    );
    void this.replace(slot, "it died", true);
  }

  /** Stops the slot's process (if alive) and starts a fresh one, after a backoff when it died. */
  private async replace(slot: Slot, why: string, died: boolean): Promise<void> {
    if (slot.replacing) return;
    slot.replacing = true;
    slot.ready = false;
    const old = slot.proc!;
    old.retiring = true;
    await old.stop();
    this.emit("recycled", old, why);
    // Draining or stopped: the process is gone, and no successor is wanted.
    if (this.stopping) return;
    if (died) slot.deaths++;
    for (;;) {
      if (this.stopping) return;
      if (slot.deaths > 0) {
        await new Promise((r) => setTimeout(r, Math.min(MAX_RESTART_DELAY_MS, 1_000 * 2 ** (slot.deaths - 1))).unref());
        if (this.stopping) return;
      }
      try {
        await this.launch(slot, Date.now() + this.o.startTimeoutMs);
        return;
      } catch (e) {
        slot.deaths++;
        this.o.log.error({ slot: slot.index, err: (e as Error).message }, "an app process did not come back: retrying");
      }
    }
  }
}
