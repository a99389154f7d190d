import { ChildProcess, spawn } from "node:child_process";
import { EventEmitter } from "node:events";
import * as path from "node:path";
import * as readline from "node:readline";
import { EXIT, WORKER_NODE_FLAGS } from "../worker/contract";

/** The worker as a checkout runs it (`npx kiln-worker`): its sources through tsx, no build needed. */
export const WORKER_BIN = path.resolve(__dirname, "..", "bin", "kiln-worker.js");

export interface WorkerProcessesOptions {
  env: Record<string, string>;
  /** Delay before a crashed worker is started again (systemd's RestartSec). */
  restartDelayMs: number;
  /** This many crashes within crashWindowMs and the worker is not restarted (StartLimitBurst in StartLimitIntervalSec). */
  crashLimit: number;
  crashWindowMs: number;
  /** After SIGTERM, how long a worker may drain before it is killed (systemd's TimeoutStopSec). */
  stopTimeoutMs: number;
  /** Every line a worker writes, for the log file. */
  log: (line: string) => void;
  /** Command that starts one worker; the default runs bin/kiln-worker.js with this node. */
  argv?: string[];
}

export interface WorkerProcessesEvents {
  processed: [];
  failed: [];
  /** Something a person watching would want to know: a restart, a recycle, a crash. */
  notice: [text: string];
  /** A worker exited with EXIT.CONFIG_ERROR; `message` is its own line naming the variable. */
  configError: [worker: string, message: string];
  /** A worker crashed crashLimit times within crashWindowMs, as systemd's start limit would stop it. */
  gaveUp: [worker: string, message: string];
}

/**
 * Every worker this process started and has not seen exit. If the fleet itself dies, they are
 * killed with it; left running they would poll a vanished endpoint for ever.
 */
const live = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of live) child.kill("SIGKILL");
});

interface Worker {
  id: string;
  state: "running" | "restarting" | "draining";
  child?: ChildProcess;
  startedAt: number;
  crashes: number[];
  restartTimer?: NodeJS.Timeout;
  killTimer?: NodeJS.Timeout;
  /** The worker's last fatal or error line, quoted when it stops unexpectedly. */
  lastError?: string;
  /** Why the worker said it stopped ("draining" line). */
  why?: string;
  /** It logged "stopped" with a drained exit code: however it ends now, it drained cleanly. */
  drained?: boolean;
  /** It logged "worker started": its SIGTERM handler is in place. */
  ready?: boolean;
  /** Told to drain before it was ready; SIGTERM follows its "worker started" line. */
  stopWhenReady?: boolean;
}

/** One worker process as `kiln status` lists it. */
export interface WorkerView {
  id: string;
  pid?: number;
  state: "running" | "restarting" | "draining";
  startedAt: number;
}

/**
 * The worker processes, as the instances of the Auto Scaling group plus the systemd unit on each:
 * started and stopped to match the desired count, restarted the way kiln-worker.service restarts
 * them (recycled at once, crashed after a growing delay, a configuration error never).
 */
export class WorkerProcesses extends EventEmitter<WorkerProcessesEvents> {
  private readonly workers = new Map<string, Worker>();
  private next = 1;
  private closed = false;
  readonly pids: number[] = [];
  peak = 0;
  restarts = 0;
  private exitWaiters: (() => void)[] = [];

  constructor(private readonly o: WorkerProcessesOptions) {
    super();
  }

  /** Workers counting toward the desired count: running, or waiting to be restarted. */
  get running(): number {
    return [...this.workers.values()].filter((w) => w.state !== "draining").length;
  }

  get draining(): number {
    return [...this.workers.values()].filter((w) => w.state === "draining").length;
  }

  get alive(): number {
    return [...this.workers.values()].filter((w) => w.child).length;
  }

  list(): WorkerView[] {
    return [...this.workers.values()].map((w) => ({ id: w.id, pid: w.child?.pid, state: w.state, startedAt: w.startedAt }));
  }

  scaleTo(n: number): void {
    if (this.closed) return;
    while (this.running < n) this.start(`w${this.next++}`);
    while (this.running > n) {
      // Scale in the newest first, a worker waiting to restart before any doing work.
      const victim = [...this.workers.values()]
        .filter((w) => w.state !== "draining")
        .sort((a, b) => Number(b.state === "restarting") - Number(a.state === "restarting") || b.startedAt - a.startedAt)[0];
      this.stop(victim);
    }
  }

  /** Drains every worker (SIGTERM) and resolves once all have exited. No worker starts again. */
  async stopAll(): Promise<void> {
    this.scaleTo(0);
    this.closed = true;
    if (this.alive === 0) return;
    await new Promise<void>((resolve) => this.exitWaiters.push(resolve));
  }

  /** Kills every worker at once; returns how many were still running. */
  killAll(): number {
    this.closed = true;
    let killed = 0;
    for (const w of this.workers.values()) {
      clearTimeout(w.restartTimer);
      if (w.child && w.child.exitCode === null && w.child.signalCode === null) {
        w.child.kill("SIGKILL");
        killed++;
      }
    }
    return killed;
  }

  private start(id: string, existing?: Worker): void {
    const argv = this.o.argv ?? [process.execPath, ...WORKER_NODE_FLAGS, WORKER_BIN, "run"];
    const child = spawn(argv[0], argv.slice(1), {
      env: this.o.env,
      stdio: ["ignore", "pipe", "pipe"],
      // Its own process group: a terminal's Ctrl-C reaches the fleet only, and the fleet alone
      // tells workers to drain, as Auto Scaling and systemd do on an instance.
      detached: true,
    });
    const w: Worker = existing ?? { id, state: "running", startedAt: 0, crashes: [] };
    w.state = "running";
    w.child = child;
    w.startedAt = Date.now();
    w.lastError = undefined;
    w.why = undefined;
    w.drained = undefined;
    w.ready = undefined;
    w.stopWhenReady = undefined;
    this.workers.set(id, w);
    live.add(child);
    if (child.pid) this.pids.push(child.pid);
    this.peak = Math.max(this.peak, this.alive);

    for (const stream of [child.stdout!, child.stderr!]) {
      readline.createInterface({ input: stream, crlfDelay: Infinity }).on("line", (line) => this.onLine(w, line));
    }
    child.once("error", (e) => {
      w.lastError = `could not start the worker: ${e.message}`;
    });
    child.once("close", (code, signal) => this.onExit(w, code, signal));
  }

  private stop(w: Worker): void {
    if (w.state === "restarting") {
      clearTimeout(w.restartTimer);
      this.workers.delete(w.id);
      return;
    }
    w.state = "draining";
    // A worker still loading has no SIGTERM handler yet and would die without a word; it has no
    // message either, so it may finish starting and then drain like the others.
    if (w.ready) w.child?.kill("SIGTERM");
    else w.stopWhenReady = true;
    w.killTimer = setTimeout(() => {
      this.emit("notice", `${w.id} did not drain within ${this.o.stopTimeoutMs / 1000} s: killed`);
      w.child?.kill("SIGKILL");
    }, this.o.stopTimeoutMs);
  }

  private onLine(w: Worker, line: string): void {
    let entry: { level?: string; msg?: string; why?: string; err?: string; exitCode?: number } | undefined;
    try {
      const parsed: unknown = JSON.parse(line);
      if (typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)) entry = parsed;
    } catch {
      // Not the worker's own log: a handler's or a command's output.
    }
    // Tagged with the worker, so `kiln logs --instance w2` finds a worker's lines across restarts.
    this.o.log(JSON.stringify(entry ? { ...entry, worker: w.id } : { worker: w.id, pid: w.child?.pid, output: line }));
    if (!entry) return;
    if (entry.msg === "worker started") {
      w.ready = true;
      if (w.stopWhenReady) w.child?.kill("SIGTERM");
    } else if (entry.msg === "processed") this.emit("processed");
    else if (entry.msg === "message failed; it returns to the queue") this.emit("failed");
    else if (entry.msg === "draining" && entry.why) w.why = entry.why;
    else if (entry.msg === "stopped" && (entry.exitCode === EXIT.DRAINED || entry.exitCode === EXIT.SCALED_IN)) w.drained = true;
    if (entry.level === "fatal" || entry.level === "error") {
      // Its first line: an error's stack belongs in the log file, not in the live view.
      w.lastError = (entry.err ? `${entry.msg}: ${entry.err}` : entry.msg)?.split("\n")[0];
    }
  }

  private onExit(w: Worker, code: number | null, signal: NodeJS.Signals | null): void {
    if (w.child) live.delete(w.child);
    clearTimeout(w.killTimer);
    w.child = undefined;
    const how = signal ? `killed by ${signal}` : `exit ${code}`;

    if (w.state === "draining" || this.closed) {
      this.workers.delete(w.id);
      const clean = code === EXIT.DRAINED || code === EXIT.SCALED_IN || w.drained;
      if (!clean) this.emit("notice", `${w.id} stopped (${how})`);
    } else if (code === EXIT.CONFIG_ERROR) {
      this.workers.delete(w.id);
      this.emit("configError", w.id, w.lastError ?? `the worker exited ${code} (configuration error)`);
    } else if (code === EXIT.RECYCLED) {
      this.restarts++;
      this.emit("notice", `${w.id} recycled${w.why ? ` (${w.why})` : ""}: started again`);
      this.start(w.id, w);
    } else {
      const now = Date.now();
      w.crashes = [...w.crashes.filter((t) => now - t < this.o.crashWindowMs), now];
      const detail = w.lastError ? `: ${w.lastError}` : "";
      if (w.crashes.length >= this.o.crashLimit) {
        this.workers.delete(w.id);
        this.emit("gaveUp", w.id, `${w.id} stopped ${w.crashes.length} times within ${+(this.o.crashWindowMs / 1000).toFixed(1)} s (last: ${how})${detail}`);
      } else {
        const delay = this.o.restartDelayMs;
        this.emit("notice", `${w.id} stopped unexpectedly (${how})${detail}; restarting in ${(delay / 1000).toFixed(1)} s`);
        w.state = "restarting";
        w.restartTimer = setTimeout(() => {
          if (this.closed || !this.workers.has(w.id)) return;
          this.restarts++;
          this.start(w.id, w);
        }, delay);
      }
    }
    if (this.alive === 0) for (const resolve of this.exitWaiters.splice(0)) resolve();
  }
}
