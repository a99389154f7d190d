import { DescribeInstancesCommand, EC2Client, Instance, InstanceStateName } from "@aws-sdk/client-ec2";
import { awsCall, isAwsError, isTransientAwsError } from "../aws-errors";
import type { BakeSettings } from "../state";
import { StepError } from "../step";
import { sleep } from "../sleep";

export const DEFAULT_POLL_MS = 5000;
export const DEFAULT_INSTANCE_TIMEOUT = 600;
/** Polls back off from the first interval to this many times it. */
const BACKOFF_CAP = 6;

export interface WaitOptions {
  /** The step waiting, for its errors. */
  step: string;
  /** Wall-clock limit, seconds. */
  timeoutSeconds: number;
  /** First interval between polls, ms. */
  pollMs: number;
  /** Gives up at once when aborted. */
  signal?: AbortSignal;
  /** What to say when the time is up. */
  timeoutCode?: string;
  timeoutHint?: string;
  /** Told when a check failed in a way worth retrying (throttling, a timeout): the wait goes on. */
  onRetry?(reason: string): void;
}

export function instanceWaitOptions(step: string, s: BakeSettings, signal?: AbortSignal, onRetry?: (reason: string) => void): WaitOptions {
  return { step, timeoutSeconds: s.instanceTimeout ?? DEFAULT_INSTANCE_TIMEOUT, pollMs: s.pollMs ?? DEFAULT_POLL_MS, signal, onRetry };
}

/** Before a call that creates something: after Ctrl-C, make nothing more that would need undoing. */
export function throwIfAborted(step: string, signal: AbortSignal, doing: string): void {
  if (signal.aborted) throw new StepError(step, `interrupted before ${doing}`);
}


/**
 * Calls `check` until it returns something other than undefined, backing off between calls, until a
 * wall-clock deadline (checked once more at the deadline) or the signal aborts; `check` may throw to
 * give up early (a state that will never become the one awaited). A check that fails with throttling,
 * a timeout or a server error is retried like a "not yet" until the deadline: a busy account must not
 * end a bake that only had to wait.
 */
export async function pollUntil<T>(what: string, opts: WaitOptions, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + opts.timeoutSeconds * 1000;
  let delay = opts.pollMs;
  for (;;) {
    if (opts.signal?.aborted) throw new StepError(opts.step, `interrupted while waiting for ${what}`);
    let result: T | undefined;
    let transient: unknown;
    try {
      result = await check();
    } catch (e) {
      if (opts.signal?.aborted || !isTransientAwsError(e)) throw e;
      transient = e;
      opts.onRetry?.(`${(e as Error).message}; still waiting for ${what}`);
    }
    if (result !== undefined) return result;
    const left = deadline - Date.now();
    if (left <= 0) {
      if (transient) throw transient;
      throw new StepError(opts.step, `gave up after ${opts.timeoutSeconds}s waiting for ${what}`, opts.timeoutCode, opts.timeoutHint);
    }
    try {
      await sleep(Math.min(delay, left), opts.signal);
    } catch {
      throw new StepError(opts.step, `interrupted while waiting for ${what}`);
    }
    delay = Math.min(delay * 1.5, opts.pollMs * BACKOFF_CAP);
  }
}

/**
 * Waits until an instance is in `want`. A state it cannot come back from (`stop` is one of them when
 * waiting for running) fails at once, with the state reason AWS gives. An instance that is not found
 * yet counts as still coming (DescribeInstances is eventually consistent); `goneOk` says a vanished
 * one is as good as terminated.
 */
export async function waitForInstance(
  ec2: EC2Client,
  instanceId: string,
  want: InstanceStateName,
  opts: WaitOptions & { dead?: InstanceStateName[]; deadHint?: string; goneOk?: boolean },
): Promise<Instance | undefined> {
  let found: Instance | undefined;
  let gone = false;
  await pollUntil(`instance ${instanceId} to be ${want}`, opts, async () => {
    try {
      const out = await awsCall(opts.step, "DescribeInstances", () => ec2.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] })));
      found = out.Reservations?.flatMap((r) => r.Instances ?? []).find((i) => i.InstanceId === instanceId);
    } catch (e) {
      if (!isAwsError(e, "InvalidInstanceID.NotFound")) throw e;
      found = undefined;
    }
    if (!found) {
      if (opts.goneOk) return (gone = true);
      return undefined;
    }
    const state = found.State?.Name;
    if (state === want) return true;
    if (state && opts.dead?.includes(state)) {
      const reason = found.StateReason;
      throw new StepError(
        opts.step,
        `instance ${instanceId} is ${state}, not ${want}${reason?.Message ? `: ${reason.Message}` : ""}`,
        reason?.Code,
        opts.deadHint ?? "someone else, or the builder's lifetime limit, may have stopped or terminated it; see the state reason",
      );
    }
    return undefined;
  });
  return gone ? undefined : found;
}
