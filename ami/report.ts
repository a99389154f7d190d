import type { RunReport, Runner, StepRecord } from "./runner";
import { StepError } from "./step";

export interface Output {
  write(text: string): void;
}

const SYMBOL: Record<string, string> = { done: "✓", failed: "✗", cancelled: "■", skipped: "–", "not run": " " };

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/**
 * Shows a run as it happens. Human: a counter and title when a step starts, its output prefixed
 * with the step, a status and time when it ends. JSON (`--json`, for CI logs): one object a line.
 */
export function attachReporter<S>(runner: Runner<S>, out: Output, opts: { json: boolean; total: number; offset?: number }): void {
  let n = opts.offset ?? 0;
  const line = (o: object) => out.write(JSON.stringify({ time: new Date().toISOString(), ...o }) + "\n");
  if (opts.json) {
    runner.on("step-start", (s) => line({ event: "step-start", step: s.name, title: s.title }));
    runner.on("step-end", (s) => line({ event: "step-end", step: s.name, status: s.status, ms: s.ms, error: s.error }));
    runner.on("log", (step, text) => line({ event: "log", step, line: text }));
    runner.on("cleanup-start", (step) => line({ event: "cleanup-start", step }));
    runner.on("cleanup-end", (step, e) => line({ event: "cleanup-end", step, error: e?.message }));
    runner.on("signal", (signal, during) => line({ event: "signal", signal, during }));
    return;
  }
  runner.on("step-start", (s) => out.write(`==> [${++n}/${opts.total}] ${s.title}\n`));
  runner.on("log", (step, text) => out.write(`    ${step}: ${text}\n`));
  runner.on("step-end", (s) => out.write(`    ${SYMBOL[s.status]} ${s.name} ${s.status} in ${seconds(s.ms)}${s.error ? `: ${s.error}` : ""}\n`));
  runner.on("cleanup-start", (step) => out.write(`==> cleaning up ${step}\n`));
  runner.on("cleanup-end", (step, e) => e && out.write(`    ✗ cleanup of ${step} failed: ${e.message}\n`));
  runner.on("signal", (signal, during) =>
    out.write(
      during === "step"
        ? `==> ${signal}: stopping and cleaning up what this bake created\n`
        : `==> ${signal}: still cleaning up; interrupting now would leave resources behind\n`,
    ),
  );
}

/** The final summary: every step with status and time, then what to do about a failure. */
export function summary(report: RunReport, steps: StepRecord[] = report.steps): string {
  const rows = steps.map((s) => `  ${SYMBOL[s.status]} ${s.name.padEnd(20)} ${s.status.padEnd(9)} ${s.ms ? seconds(s.ms) : ""}`);
  const lines = ["", "Steps:", ...rows];
  if (report.failure) {
    const e = report.failure.error;
    // A StepError carries the AWS code when there was one; anything else is named by its class.
    const name = e instanceof StepError ? e.code : e.name !== "Error" ? e.name : undefined;
    const code = name ? ` (${name})` : "";
    lines.push("", `Failed in ${report.failure.step}${code}: ${e.message}`);
    if (e instanceof StepError && e.hint) lines.push(`What to do: ${e.hint}`);
  }
  if (report.interrupted) {
    lines.push("", `Interrupted by ${report.interrupted}${report.leftBehind.length ? "." : "; everything this bake created was cleaned up."}`);
  }
  if (report.leftBehind.length) {
    lines.push("", "LEFT BEHIND (clean these up, or run `npm run bake-ami -- --reap`):");
    for (const l of report.leftBehind) lines.push(`  ${l.step}: ${l.error}`);
  }
  return lines.join("\n") + "\n";
}
