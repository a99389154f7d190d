/**
 * Ctrl-C and SIGTERM for a CLI: the first one calls `first`, a later one `again`. One Ctrl-C can
 * arrive twice (a wrapper that relays what the terminal already sent to the whole process group,
 * as `tsx`'s CLI does): two within SAME_SIGNAL_MS are one. The npm scripts run in one process
 * (node --require tsx/cjs) because tsx's CLI SIGKILLs a child that does not answer its relayed
 * signal within 60 ms, which a busy fleet or a bake in its cleanup cannot promise.
 */
export const SAME_SIGNAL_MS = 500;

export function onInterrupts(first: (signal: NodeJS.Signals) => void, again: (signal: NodeJS.Signals) => void): void {
  let firstAt: number | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    if (firstAt === undefined) {
      firstAt = Date.now();
      first(signal);
    } else if (Date.now() - firstAt >= SAME_SIGNAL_MS) {
      again(signal);
    }
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
}
