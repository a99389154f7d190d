import { strict as assert } from "node:assert";
import type { BakeState } from "../../ami/state";
import { Step, StepContext, StepError } from "../../ami/step";

/** A context whose log lines are kept, with a signal a test may abort. */
export function context(abort = new AbortController()): StepContext & { lines: string[]; abort: AbortController } {
  const lines: string[] = [];
  return { lines, abort, signal: abort.signal, log: (line) => lines.push(line) };
}

/** Asserts a StepError of `step` with `code` and a hint; returns it for more checks. */
export async function rejectsWithStep(p: Promise<unknown>, step: string, code: string | undefined, message?: RegExp): Promise<StepError> {
  let error: unknown;
  await assert.rejects(p, (e) => ((error = e), true));
  assert.ok(error instanceof StepError, `a StepError, not ${(error as Error)?.stack}`);
  assert.equal(error.step, step);
  assert.equal(error.code, code, error.message);
  if (message) assert.match(error.message, message);
  return error;
}

/** Runs steps in order; on a failure, runs the started ones' cleanups in reverse (as the runner does) and rethrows. */
export async function runAll(state: BakeState, steps: Step<BakeState>[], ctx = context()): Promise<void> {
  const started: Step<BakeState>[] = [];
  try {
    for (const s of steps) {
      started.push(s);
      await s.run(state, ctx);
    }
  } catch (e) {
    await cleanupAll(state, started);
    throw e;
  }
}

export async function cleanupAll(state: BakeState, steps: Step<BakeState>[]): Promise<void> {
  for (const s of [...steps].reverse()) await s.cleanup?.(state, context());
}
