import type { ChildProcess } from "node:child_process";

/**
 * A child started with `detached: true` leads a process group of its own: signalling the group
 * reaches everything it started (a shell's children, an app's workers), not just the child.
 */
export function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // The whole group is gone already.
  }
}

/** Whether any process of the group is still alive. */
export function groupAlive(pid: number): boolean {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Stops a child's whole group: SIGTERM, then SIGKILL after `graceMs` if anything in it is left.
 * Resolves once the child has exited and nothing in its group survives.
 */
export async function stopGroup(child: ChildProcess, graceMs: number): Promise<void> {
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once("exit", () => resolve());
  });
  signalGroup(child, "SIGTERM");
  const pid = child.pid;
  let timer: NodeJS.Timeout | undefined;
  const killed = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      signalGroup(child, "SIGKILL");
      resolve();
    }, graceMs);
  });
  await Promise.race([exited, killed]);
  await exited;
  clearTimeout(timer);
  // The leader may exit on SIGTERM and leave children that ignore it behind.
  if (pid !== undefined && groupAlive(pid)) {
    const end = Date.now() + graceMs;
    while (groupAlive(pid) && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    signalGroup(child, "SIGKILL");
  }
}
