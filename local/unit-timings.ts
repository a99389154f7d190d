import * as fs from "node:fs";
import * as path from "node:path";

/** What kiln-worker.service tells systemd about restarts; the local fleet restarts workers the same way. */
export interface UnitTimings {
  restartSec: number;
  startLimitIntervalSec: number;
  startLimitBurst: number;
  timeoutStopSec: number;
}

export const WORKER_UNIT = path.resolve(__dirname, "..", "worker", "systemd", "kiln-worker.service");

/** Read from the unit file itself, so the local fleet cannot drift from what an instance does. */
export function readUnitTimings(file = WORKER_UNIT): UnitTimings {
  const text = fs.readFileSync(file, "utf8");
  const value = (key: string) => {
    const m = new RegExp(`^${key}=(\\d+)s?\\s*$`, "m").exec(text);
    if (!m) throw new Error(`${file} has no ${key}= line in seconds`);
    return Number(m[1]);
  };
  return {
    restartSec: value("RestartSec"),
    startLimitIntervalSec: value("StartLimitIntervalSec"),
    startLimitBurst: value("StartLimitBurst"),
    timeoutStopSec: value("TimeoutStopSec"),
  };
}
