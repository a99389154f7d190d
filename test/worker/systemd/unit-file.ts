import * as fs from "node:fs";
import * as path from "node:path";

/** The committed unit files (worker/systemd/). */
export const UNITS_DIR = path.resolve(__dirname, "../../../worker/systemd");
export const UNIT_NAMES = ["kiln-worker.service", "kiln-worker-env.service", "kiln-worker-failed@.service"] as const;
/** The failure reporter as systemd starts it for the worker: the template instantiated with %N (the unit name without its suffix). */
export const REPORTER_FOR_WORKER = "kiln-worker-failed@kiln-worker.service";

/** Section → key → every value assigned, in order (systemd keeps lists for keys set more than once). */
export type UnitFile = Map<string, Map<string, string[]>>;

/** systemd's unit syntax as far as kiln's units use it: sections, comments, continuation lines. */
export function parseUnit(text: string): UnitFile {
  const unit: UnitFile = new Map();
  let section: Map<string, string[]> | undefined;
  const lines = text.replace(/\\\n/g, " ").split("\n");
  for (const raw of lines) {
    const line = raw.trim();
    if (!line || line.startsWith("#") || line.startsWith(";")) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = unit.get(header[1]) ?? new Map();
      unit.set(header[1], section);
      continue;
    }
    const eq = line.indexOf("=");
    if (!section || eq < 0) throw new Error(`not a unit file line: ${raw}`);
    const key = line.slice(0, eq).trim();
    section.set(key, [...(section.get(key) ?? []), line.slice(eq + 1).trim()]);
  }
  return unit;
}

export function readUnit(name: string): UnitFile {
  return parseUnit(fs.readFileSync(path.join(UNITS_DIR, name), "utf8"));
}

/** The last value of a key (what systemd uses for single-valued settings), or undefined. */
export function setting(unit: UnitFile, section: string, key: string): string | undefined {
  return unit.get(section)?.get(key)?.at(-1);
}

/** Space-separated list settings (After=, RestartPreventExitStatus=, ...), all assignments joined. */
export function list(unit: UnitFile, section: string, key: string): string[] {
  return (unit.get(section)?.get(key) ?? []).flatMap((v) => v.split(/\s+/).filter(Boolean));
}

/** systemd time spans as kiln's units write them: plain seconds, or with s / min. */
export function seconds(span: string | undefined): number {
  const m = /^(\d+)\s*(s|sec|min)?$/.exec(span ?? "");
  if (!m) throw new Error(`not a time span kiln's units use: ${span}`);
  return Number(m[1]) * (m[2] === "min" ? 60 : 1);
}
