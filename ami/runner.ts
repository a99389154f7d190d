import { EventEmitter } from "node:events";
import { withCallSignal } from "./call-signal";
import { Step, StepContext, StepError } from "./step";

export type StepStatus = "done" | "failed" | "cancelled" | "skipped" | "not run";

export interface StepRecord {
  name: string;
  title: string;
  status: StepStatus;
  ms: number;
  error?: string;
  /** Cleanup of this step: undefined when it had none to run. */
  cleanup?: { ok: boolean; ms: number; error?: string };
}

export interface RunReport {
  ok: boolean;
  /** Set when a signal stopped the run. */
  interrupted?: NodeJS.Signals;
  /** The step that failed and why, when one did. */
  failure?: { step: string; error: Error };
  /** Why the run finished before its last step, when a step said so. */
  finishedEarly?: string;
  steps: StepRecord[];
  /** Cleanups that failed: what they could not undo is still out there. */
  leftBehind: { step: string; error: string }[];
}

export interface RunnerEvents {
  "step-start": [step: StepRecord];
  "step-end": [step: StepRecord];
  log: [step: string, line: string];
  "cleanup-start": [step: string];
  "cleanup-end": [step: string, error?: Error];
  signal: [signal: NodeJS.Signals, during: "step" | "cleanup"];
}

export interface RunnerOptions {
  /** `abort` keeps what was created after a failure, for debugging; a signal still cleans up. */
  onError?: "cleanup" | "abort";
  /** Trap SIGINT and SIGTERM for the run's duration (the CLI does; tests send them for real). */
  trapSignals?: boolean;
}

/**
 * Runs steps in order and undoes them in reverse: after success (the builder, key pair and security
 * group are temporary), after a failure, and after Ctrl-C or SIGTERM, which abort the running step
 * through its signal. A cleanup that fails does not stop the others; it is reported as left behind.
 */
export class Runner<S> extends EventEmitter<RunnerEvents> {
  constructor(
    private readonly steps: Step<S>[],
    private readonly opts: RunnerOptions = {},
  ) {
    super();
  }

  async run(state: S, abort = new AbortController()): Promise<RunReport> {
    const records: StepRecord[] = this.steps.map((s) => ({ name: s.name, title: s.title, status: "not run", ms: 0 }));
    const report: RunReport = { ok: false, steps: records, leftBehind: [] };
    const started: number[] = [];
    let phase: "step" | "cleanup" = "step";

    const onSignal = (signal: NodeJS.Signals) => {
      this.emit("signal", signal, phase);
      // A second Ctrl-C during cleanup must not cut the cleanup short: it is what prevents leaks.
      if (phase === "step" && !report.interrupted) {
        report.interrupted = signal;
        abort.abort(new StepError("interrupted", `interrupted by ${signal}`));
      }
    };
    if (this.opts.trapSignals) {
      process.on("SIGINT", onSignal);
      process.on("SIGTERM", onSignal);
    }
    const abortListener = () => (report.interrupted ??= "SIGINT");
    abort.signal.addEventListener("abort", abortListener);

    try {
      for (let i = 0; i < this.steps.length; i++) {
        const step = this.steps[i];
        const record = records[i];
        if (abort.signal.aborted) break;
        started.push(i);
        this.emit("step-start", record);
        const t0 = Date.now();
        try {
          await withCallSignal(abort.signal, () => step.run(state, this.context(step.name, abort.signal)));
          record.status = abort.signal.aborted ? "cancelled" : "done";
        } catch (e) {
          record.status = abort.signal.aborted ? "cancelled" : "failed";
          record.error = (e as Error).message;
          if (!abort.signal.aborted) report.failure = { step: step.name, error: e as Error };
        }
        record.ms = Date.now() - t0;
        this.emit("step-end", record);
        if (record.status !== "done") break;
        const early = step.finishEarly?.(state);
        if (early) {
          report.finishedEarly = early;
          for (const r of records.slice(i + 1)) r.status = "skipped";
          break;
        }
      }
      report.ok = !report.failure && !report.interrupted;

      const keep = report.failure && !report.interrupted && this.opts.onError === "abort";
      if (!keep) {
        phase = "cleanup";
        await this.cleanup(state, started, records, report);
      }
      return report;
    } finally {
      abort.signal.removeEventListener("abort", abortListener);
      if (this.opts.trapSignals) {
        process.removeListener("SIGINT", onSignal);
        process.removeListener("SIGTERM", onSignal);
      }
    }
  }

  private async cleanup(state: S, started: number[], records: StepRecord[], report: RunReport): Promise<void> {
    // Cleanups run to the end even after an interrupt: they get a signal of their own.
    const quiet = new AbortController().signal;
    for (const i of [...started].reverse()) {
      const step = this.steps[i];
      if (!step.cleanup) continue;
      this.emit("cleanup-start", step.name);
      const t0 = Date.now();
      try {
        await withCallSignal(quiet, () => step.cleanup!(state, this.context(step.name, quiet)));
        records[i].cleanup = { ok: true, ms: Date.now() - t0 };
        this.emit("cleanup-end", step.name);
      } catch (e) {
        const message = (e as Error).message;
        records[i].cleanup = { ok: false, ms: Date.now() - t0, error: message };
        report.leftBehind.push({ step: step.name, error: message });
        report.ok = false;
        this.emit("cleanup-end", step.name, e as Error);
      }
    }
  }

  private context(step: string, signal: AbortSignal): StepContext {
    return { log: (line) => this.emit("log", step, line), signal };
  }
}
