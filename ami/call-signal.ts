import { AsyncLocalStorage } from "node:async_hooks";

/**
 * The abort signal of whatever the runner is running (a step, or a cleanup), found by every AWS
 * request made inside it without being passed down: the bake's HTTP handler (aws-clients.ts) reads
 * it, so Ctrl-C cancels the request in flight, whichever of the forty-odd call sites made it.
 */
const current = new AsyncLocalStorage<AbortSignal | undefined>();

export function withCallSignal<T>(signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
  return current.run(signal, fn);
}

export function callSignal(): AbortSignal | undefined {
  return current.getStore();
}

/**
 * Runs a call that creates something outside the step's signal: once sent, its answer (the new id)
 * is the only record of what to undo, so Ctrl-C waits for it. The request timeout still bounds it.
 */
export function unabortable<T>(fn: () => Promise<T>): Promise<T> {
  return current.run(undefined, fn);
}
