/**
 * What `kiln` exits with, so a script can tell "the answer is no" from "I could not ask". The
 * configuration code is the worker's and the local fleet's (78), so one check covers every command.
 */
export const EXIT = {
  OK: 0,
  /** A call failed (AWS, the local fleet) or something unexpected happened: try again or look. */
  FAILED: 1,
  /** A flag is wrong, or the command does not apply here: nothing was done. */
  USAGE: 2,
  /** The command ran and the answer is bad: smoke not processed in time, doctor found problems. */
  CHECK_FAILED: 3,
  /** The stack's resources are not there: not deployed in this region, or no local fleet running. */
  NOT_FOUND: 4,
  /** The stack file is invalid. */
  CONFIG: 78,
  /** Interrupted by Ctrl-C before it finished. */
  INTERRUPTED: 130,
} as const;

/** A flag or argument the user got wrong; printed as one line, exit 2. */
export class UsageError extends Error {
  readonly name = "UsageError";
}

/** The stack, queue, group or local fleet the command needs does not exist; exit 4. */
export class NotFoundError extends Error {
  readonly name = "NotFoundError";
}

/** An AWS or local-fleet call failed; the message says which call and what to check; exit 1. */
export class CallFailed extends Error {
  readonly name = "CallFailed";
}
