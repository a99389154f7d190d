import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { DEFAULT_OPTIONS, LocalOptions } from "../../local/plan";
import { FleetIo } from "../../local/fleet";

/** A scratch directory per test, for worker logs and markers. */
export function scratch(): { dir: string; remove: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kiln-local-"));
  return { dir, remove: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Options for a quick run of the dev stack: a fast demo handler, retries at once, frequent ticks
 * and plain lines, logs in the test's own directory.
 */
export function quickOptions(dir: string, over: Partial<LocalOptions> = {}): LocalOptions {
  return {
    ...DEFAULT_OPTIONS,
    logFile: path.join(dir, "workers.log"),
    stateDir: path.join(dir, "state"),
    plain: true,
    tickMs: 200,
    plainEveryMs: 500,
    ...over,
    env: { DEMO_AVG_MS: "20", WORKER_RETRY_DELAY: "0", ...over.env },
  };
}

/** Captures what the fleet prints. */
export function captureIo(): FleetIo & { text: () => string; errors: () => string } {
  let out = "";
  let err = "";
  return {
    out: { write: (s: string) => (out += s), isTTY: false },
    err: { write: (s: string) => (err += s) },
    text: () => out,
    errors: () => err,
  };
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Whether anything still answers at `endpoint`. */
export async function answers(endpoint: string): Promise<boolean> {
  try {
    await fetch(`${endpoint}/health`, { signal: AbortSignal.timeout(2000) });
    return true;
  } catch {
    return false;
  }
}

/** The JSON lines a run's workers wrote. */
export function workerLog(file: string): { msg?: string; pid?: number; exitCode?: number }[] {
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { msg?: string; pid?: number; exitCode?: number });
}
