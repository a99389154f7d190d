/**
 * Packer's multistep design: a bake is a flat list of small steps. Each creates at most one kind of
 * resource, records its id in the shared state the moment the call succeeds, and owns the cleanup
 * that undoes it. The runner (runner.ts) undoes started steps in reverse, on failure, Ctrl-C and
 * SIGTERM alike.
 */

/** What a step may use besides the state: output, cancellation, the clock. */
export interface StepContext {
  /** A line for the user (the runner prefixes it with the step). */
  log(line: string): void;
  /** Aborted on Ctrl-C or SIGTERM: a step waiting on something should give up at once. */
  signal: AbortSignal;
}

export interface Step<S> {
  /** Kebab-case id, shown in output, the manifest and errors: "create-key-pair". */
  name: string;
  /** What the step does, for the step list: "temporary SSH key pair". */
  title: string;
  /**
   * Does the work. Records every id it creates in `state` right after the call that created it,
   * so a failure later in the same step still cleans it up.
   */
  run(state: S, ctx: StepContext): Promise<void>;
  /**
   * Checked after `run` succeeded: a reason the whole run is finished, every later step skipped
   * (an image with the same content hash exists), or undefined to go on.
   */
  finishEarly?(state: S): string | undefined;
  /**
   * Undoes what `run` recorded in `state`, even when `run` failed half way or never got past its
   * first call. Must be safe to call when nothing was created. Runs whether the bake succeeded or
   * not, unless the runner is told to keep resources (--on-error=abort).
   */
  cleanup?(state: S, ctx: StepContext): Promise<void>;
}

/** A failure a user can act on: names the step, the AWS error code when there is one, and what to do. */
export class StepError extends Error {
  constructor(
    readonly step: string,
    message: string,
    readonly code?: string,
    readonly hint?: string,
  ) {
    super(message);
    this.name = "StepError";
  }
}
