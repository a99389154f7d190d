import { ChildProcess, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";

/**
 * A root made of read-only layers and a writable one (overlayfs): a baked image stays as it was
 * while each boot of it writes only to its own upper directory, as each instance writes to its own
 * copy of the snapshot.
 */
export class Overlay {
  private mounted = false;

  private constructor(
    readonly dir: string,
    readonly lowers: string[],
  ) {}

  get merged(): string {
    return path.join(this.dir, "merged");
  }

  /** What this boot changed: new and changed files, and whiteouts for removed ones. */
  get upper(): string {
    return path.join(this.dir, "upper");
  }

  /** `lowers` top first, as overlayfs lists them. */
  static mount(dir: string, lowers: string[]): Overlay {
    const o = new Overlay(dir, lowers);
    for (const d of ["merged", "upper", "work"]) fs.mkdirSync(path.join(dir, d), { recursive: true });
    run("mount", ["-t", "overlay", "overlay", "-o", `lowerdir=${lowers.join(":")},upperdir=${o.upper},workdir=${path.join(dir, "work")}`, o.merged]);
    o.mounted = true;
    return o;
  }

  path(p: string): string {
    return path.join(this.merged, p);
  }

  unmount(): void {
    if (!this.mounted) return;
    for (let i = 0; i < 50; i++) {
      if (spawnSync("umount", [this.merged]).status === 0) {
        this.mounted = false;
        return;
      }
      spawnSync("sleep", ["0.1"]);
    }
    run("umount", ["--lazy", this.merged]);
    this.mounted = false;
  }
}

export interface ExecResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * A directory booted with systemd-nspawn: systemd as PID 1, the network namespace it is given, no
 * host registration (no machined here). The test reaches inside with nsenter, and stops it as
 * EC2 stops an instance: SIGRTMIN+4 to PID 1, a clean poweroff.
 */
export class BootedMachine {
  private output = "";
  private readonly exited: Promise<number | null>;

  private constructor(
    readonly root: string,
    readonly name: string,
    private readonly nspawn: ChildProcess,
    private init = 0,
  ) {
    this.exited = new Promise((resolve) => nspawn.once("exit", (code) => resolve(code)));
  }

  /** What systemd-nspawn printed: why a boot failed. */
  get console(): string {
    return this.output;
  }

  static async boot(opts: { root: string; netns: string; timeoutMs?: number }): Promise<BootedMachine> {
    const name = `kiln-${randomBytes(4).toString("hex")}`;
    const nspawn = spawn(
      "systemd-nspawn",
      [
        "--boot",
        `--directory=${opts.root}`,
        `--machine=${name}`,
        // No systemd on this machine's side to register with or to run a scope in.
        "--register=no",
        "--keep-unit",
        `--network-namespace-path=${opts.netns}`,
        "--resolv-conf=off",
        "--timezone=off",
        "--link-journal=no",
        "--console=pipe",
        "--quiet",
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    const m = new BootedMachine(opts.root, name, nspawn);
    const keep = (b: Buffer) => (m.output = (m.output + b.toString()).slice(-20_000));
    nspawn.stdout!.on("data", keep);
    nspawn.stderr!.on("data", keep);
    const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
    try {
      while (!m.init) {
        if (nspawn.exitCode !== null) throw new Error(`systemd-nspawn exited ${nspawn.exitCode} at boot:\n${m.output}`);
        if (Date.now() > deadline) throw new Error(`no systemd in ${opts.root} after ${opts.timeoutMs ?? 60_000} ms:\n${m.output}`);
        m.init = initOf(nspawn.pid!) ?? 0;
        if (!m.init) await sleep(50);
      }
      // "running" or "degraded": every unit of the boot transaction has started or failed. Until
      // systemd has its private socket, systemctl cannot ask.
      for (;;) {
        const state = await m.exec(["systemctl", "is-system-running", "--wait"], { timeoutMs: Math.max(1_000, deadline - Date.now()) });
        if (/^(running|degraded)/.test(state.stdout)) break;
        if (Date.now() > deadline || !/Failed to connect to bus/.test(state.stderr)) {
          throw new Error(`the machine did not finish booting: ${state.stdout}${state.stderr}`);
        }
        await sleep(100);
      }
    } catch (e) {
      await m.kill();
      throw e;
    }
    return m;
  }

  /** Runs argv inside the machine (its mount, PID, UTS, IPC and network namespaces) as root. */
  exec(argv: string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<ExecResult> {
    return new Promise((resolve, reject) => {
      const child = spawn(
        "nsenter",
        [`--target=${this.init}`, "--mount", "--uts", "--ipc", "--net", "--pid", "--root", "--wd", "--", "/usr/bin/env", "-i", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "SYSTEMD_COLORS=0", "SYSTEMD_PAGER=cat", ...argv],
        { stdio: ["pipe", "pipe", "pipe"] },
      );
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (b: Buffer) => (stdout += b.toString()));
      child.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
      const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 60_000);
      child.once("error", reject);
      child.once("close", (status) => {
        clearTimeout(timer);
        resolve({ status, stdout, stderr });
      });
      // nsenter may be gone (the machine powered off) before it reads its input.
      child.stdin.on("error", () => undefined);
      child.stdin.end(opts.input ?? "");
    });
  }

  /** The journal as JSON entries, of one unit or all. */
  async journal(unit?: string): Promise<Record<string, string>[]> {
    const r = await this.exec(["journalctl", "--no-pager", "-o", "json", ...(unit ? ["-u", unit] : [])]);
    return r.stdout
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, string>);
  }

  /** A unit's property (systemctl show -p). */
  async property(unit: string, name: string): Promise<string> {
    const r = await this.exec(["systemctl", "show", "-p", name, "--value", unit]);
    return r.stdout.trim();
  }

  /** Polls `check` until it holds; throws with `what` and the machine's journal tail when it never does. */
  async waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      if (await check()) return;
      await sleep(250);
    }
    if (await check()) return;
    const tail = await this.exec(["journalctl", "--no-pager", "-n", "60", "-o", "short-monotonic"]);
    throw new Error(`${what}: not within ${timeoutMs / 1000} s. The machine's journal ends with:\n${tail.stdout}`);
  }

  /** A clean poweroff, as StopInstances does; resolves once systemd-nspawn has exited. */
  async poweroff(timeoutMs = 90_000): Promise<void> {
    // Node's process.kill knows no real-time signals.
    if (this.nspawn.exitCode === null) spawnSync("kill", ["-s", "RTMIN+4", String(this.init)]);
    const done = await Promise.race([this.exited.then(() => true), sleep(timeoutMs).then(() => false)]);
    this.cleanUp();
    if (!done) {
      await this.kill();
      throw new Error(`${this.name} did not power off within ${timeoutMs / 1000} s:\n${this.output}`);
    }
  }

  async kill(): Promise<void> {
    if (this.nspawn.exitCode === null && this.nspawn.signalCode === null) {
      this.nspawn.kill("SIGKILL");
      if (this.init) spawnSync("kill", ["-KILL", String(this.init)]);
      await Promise.race([this.exited, sleep(5_000)]);
    }
    this.cleanUp();
  }

  /** systemd-nspawn leaves its mount propagation directory when /run is not a tmpfs. */
  private cleanUp(): void {
    fs.rmSync(`/run/systemd/nspawn/propagate/${this.name}`, { recursive: true, force: true });
  }
}

/** systemd-nspawn's child that runs systemd: the container's PID 1, seen from here. */
function initOf(nspawnPid: number): number | undefined {
  const children = (pid: number) => {
    try {
      return fs
        .readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8")
        .trim()
        .split(/\s+/)
        .filter(Boolean)
        .map(Number);
    } catch {
      return [];
    }
  };
  for (const pid of children(nspawnPid)) {
    try {
      if (fs.readFileSync(`/proc/${pid}/comm`, "utf8").trim() === "systemd") return pid;
    } catch {
      /* gone */
    }
  }
  return undefined;
}

function run(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} exited ${r.status}: ${r.stderr.trim()}`);
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
