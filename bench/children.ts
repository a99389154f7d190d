import { ChildProcess, fork, ForkOptions } from "node:child_process";

/**
 * Every process the bench starts, so that the end of a run, a failure, Ctrl-C and SIGTERM all stop
 * them: an emulator or worker left behind would also skew the next run's numbers.
 */
const live = new Set<ChildProcess>();

export function track<T extends ChildProcess>(child: T): T {
  live.add(child);
  child.once("exit", () => live.delete(child));
  return child;
}

/** A TypeScript file of this folder as its own Node process, with an IPC channel to this one. */
export function forkTs(file: string, options: ForkOptions = {}): ChildProcess {
  return track(
    fork(file, [], {
      // Explicit, not inherited: under `tsx` our own execArgv carries its loader flags, and the
      // child should load exactly the same way whether the bench runs via tsx or a register hook.
      execArgv: ["--require", require.resolve("tsx/cjs")],
      stdio: ["ignore", "inherit", "inherit", "ipc"],
      ...options,
    }),
  );
}

export function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
export async function stopChild(child: ChildProcess, graceMs = 5_000): Promise<void> {
  if (hasExited(child)) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGTERM");
  const killer = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await exited;
  clearTimeout(killer);
}

export async function stopAll(): Promise<void> {
  await Promise.all([...live].map((c) => stopChild(c)));
}

/** Ctrl-C and SIGTERM stop every child before the bench exits; a plain exit kills what is left. */
export function stopChildrenOnExit(): void {
  const onSignal = (signal: NodeJS.Signals) => {
    process.stderr.write(`\n${signal}: stopping ${live.size} child process(es)\n`);
    void stopAll().finally(() => process.exit(signal === "SIGINT" ? 130 : 143));
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  process.once("exit", () => {
    for (const c of live) c.kill("SIGKILL");
  });
}
