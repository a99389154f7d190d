import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

/**
 * How a running `npm run local` is found: a small JSON file per stack in the state directory
 * (`.kiln/local/`, or $KILN_LOCAL_DIR) naming its process, its embedded SQS and the unix socket its
 * control API listens on. `npm run kiln -- ... --stack dev` reads it to work on the local fleet.
 */
export interface LocalFleetRecord {
  stack: string;
  pid: number;
  startedAt: number;
  /** The control API: HTTP over this unix socket. */
  socket: string;
  endpoint: string;
  region: string;
  queueUrl: string;
  dlqUrl: string;
  queueName: string;
  dlqName: string;
  logFile: string;
}

export const STATE_DIR_VARIABLE = "KILN_LOCAL_DIR";

export function localStateDir(root: string, env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(env[STATE_DIR_VARIABLE] || path.join(root, ".kiln", "local"));
}

export function recordFile(dir: string, stack: string): string {
  return path.join(dir, `${stack}.json`);
}

/** Unix socket paths are limited to about 107 bytes; a deep checkout gets one under the temp dir. */
const SOCKET_PATH_MAX = 100;

export function socketPath(dir: string, stack: string): string {
  const beside = path.join(dir, `${stack}.sock`);
  if (Buffer.byteLength(beside) <= SOCKET_PATH_MAX) return beside;
  const id = createHash("sha256").update(dir).digest("hex").slice(0, 12);
  return path.join(os.tmpdir(), `kiln-${id}-${stack}.sock`);
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: alive, someone else's.
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** The record of a local fleet of `stack` that is still running; a stale one (its process gone) is removed. */
export function findLocalFleet(dir: string, stack: string): LocalFleetRecord | undefined {
  const file = recordFile(dir, stack);
  let record: LocalFleetRecord;
  try {
    record = JSON.parse(fs.readFileSync(file, "utf8")) as LocalFleetRecord;
  } catch {
    return undefined;
  }
  if (typeof record.pid === "number" && isAlive(record.pid)) return record;
  fs.rmSync(file, { force: true });
  return undefined;
}

/** Written atomically, readable by this user only: the socket drives the fleet. */
export function writeLocalFleetRecord(dir: string, record: LocalFleetRecord): string {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = recordFile(dir, record.stack);
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(record, null, 2) + "\n", { mode: 0o600 });
  fs.renameSync(tmp, file);
  return file;
}

/** Removes the record if it is still this process's. */
export function removeLocalFleetRecord(dir: string, stack: string, pid = process.pid): void {
  const file = recordFile(dir, stack);
  try {
    const record = JSON.parse(fs.readFileSync(file, "utf8")) as LocalFleetRecord;
    if (record.pid === pid) fs.rmSync(file, { force: true });
  } catch {
    // Already gone.
  }
}
