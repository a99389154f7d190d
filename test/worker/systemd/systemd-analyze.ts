import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseUnit } from "./unit-file";

const HOST_UNITS = "/usr/lib/systemd/system";
const ENV = { ...process.env, SYSTEMD_LOG_COLOR: "0", SYSTEMD_PAGER: "cat", SYSTEMD_COLORS: "0" };

/**
 * A throwaway root for systemd-analyze --root: the units under test in /etc/systemd/system, the
 * host's targets (every service depends on sysinit.target and friends by default), and an
 * executable stub at every path the units run, since verify checks that each one exists.
 */
export class SystemdRoot {
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), "kiln-systemd-root-"));

  constructor(units: Record<string, string>, opts: { stubs?: boolean } = {}) {
    const unitDir = this.path("/etc/systemd/system");
    fs.mkdirSync(unitDir, { recursive: true });
    fs.mkdirSync(this.path(HOST_UNITS), { recursive: true });
    for (const target of fs.readdirSync(HOST_UNITS).filter((f) => f.endsWith(".target"))) {
      fs.copyFileSync(path.join(HOST_UNITS, target), this.path(path.join(HOST_UNITS, target)));
    }
    for (const [name, text] of Object.entries(units)) {
      fs.mkdirSync(path.dirname(path.join(unitDir, name)), { recursive: true });
      fs.writeFileSync(path.join(unitDir, name), text);
      if (opts.stubs !== false) for (const exe of executables(text)) this.stub(exe);
    }
  }

  path(p: string): string {
    return path.join(this.dir, p);
  }

  stub(exe: string): void {
    fs.mkdirSync(path.dirname(this.path(exe)), { recursive: true });
    fs.writeFileSync(this.path(exe), "#!/bin/sh\nexit 0\n", { mode: 0o755 });
  }

  /** `systemd-analyze verify`: its exit status and everything it printed. */
  verify(...units: string[]) {
    const r = spawnSync("systemd-analyze", ["verify", `--root=${this.dir}`, ...units], { encoding: "utf8", env: ENV });
    if (r.error) throw r.error;
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  /** `systemd-analyze security --offline`: the overall exposure (0 safest, 10 worst) and the table. */
  security(unit: string, threshold = 100) {
    const r = spawnSync("systemd-analyze", ["security", "--offline=true", `--threshold=${threshold}`, `--root=${this.dir}`, unit], { encoding: "utf8", env: ENV });
    if (r.error) throw r.error;
    const m = /Overall exposure level for \S+: (\d+\.\d+)/.exec(r.stdout);
    if (!m) throw new Error(`no exposure level in systemd-analyze security output:\n${r.stdout}${r.stderr}`);
    return { exposure: Number(m[1]), status: r.status, table: r.stdout, stderr: r.stderr };
  }

  remove(): void {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The programs a unit runs: the first word of every Exec*= line, without systemd's prefixes. */
export function executables(unitText: string): string[] {
  const out: string[] = [];
  for (const section of parseUnit(unitText).values()) {
    for (const [key, values] of section) {
      if (!key.startsWith("Exec")) continue;
      for (const v of values) out.push(v.replace(/^[-@:+!|]+/, "").split(/\s+/)[0]);
    }
  }
  return out;
}

/** Passes only when verify exits 0 AND says nothing: systemd reports bad settings as warnings. */
export function assertVerifies(result: { status: number | null; stderr: string; stdout: string }): void {
  if (result.status !== 0 || result.stderr.trim() !== "") {
    throw new Error(`systemd-analyze verify exited ${result.status}:\n${result.stderr}${result.stdout}`);
  }
}
