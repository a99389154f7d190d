import { ChildProcess, execFile, spawn } from "node:child_process";
import { LineSplitter } from "./ssh";

/**
 * AWS's session-manager-plugin, the local end of a Session Manager session, run the way the AWS CLI's
 * `aws ssm start-session` runs it (awscli/customizations/sessionmanager.py) and Packer's amazon plugin
 * (common/ssm/session.go): StartSession's answer, region, "StartSession", profile, the request, the SSM
 * endpoint. For AWS-StartPortForwardingSession it listens on localhost:<localPortNumber> and carries
 * each connection to the port on the instance.
 */
export const PLUGIN = "session-manager-plugin";

/**
 * Plugins newer than this read StartSession's answer from the environment variable named in its place
 * (the CLI's rule, LAST_PLUGIN_VERSION_WITHOUT_ENV_VAR): the answer holds the session's token, and a
 * command line is readable by every user of the machine (`ps`), an environment only by its owner.
 */
const LAST_VERSION_WITHOUT_ENV = "1.2.497.0";
export const RESPONSE_ENV = "AWS_SSM_START_SESSION_RESPONSE";

/** Where to get the plugin, for the one line a bake without it fails with. */
export function installHint(arch: string = process.arch): string {
  const deb = arch === "arm64" ? "ubuntu_arm64" : "ubuntu_64bit";
  return (
    `install AWS's session-manager-plugin (Debian/Ubuntu: sudo dpkg -i session-manager-plugin.deb from ` +
    `https://s3.amazonaws.com/session-manager-downloads/plugin/latest/${deb}/session-manager-plugin.deb; macOS: brew install --cask session-manager-plugin; ` +
    `others: https://docs.aws.amazon.com/systems-manager/latest/userguide/session-manager-working-with-install-plugin.html), ` +
    `or reach the builder from inside the VPC with kiln:bake.sshInterface private_ip`
  );
}

/** `session-manager-plugin --version`, or undefined when no plugin is on PATH. */
export function pluginVersion(signal?: AbortSignal): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    execFile(PLUGIN, ["--version"], { timeout: 10_000, signal, encoding: "utf8" }, (error, stdout, stderr) => {
      if ((error as NodeJS.ErrnoException | null)?.code === "ENOENT") return resolve(undefined);
      if (error) return reject(new Error(`${PLUGIN} --version failed: ${(stderr || error.message).trim()}`));
      resolve(stdout.replace(/\s+/g, ""));
    });
  });
}

/** Whether this plugin version takes StartSession's answer through RESPONSE_ENV (a version it cannot read: no, as the CLI decides). */
export function readsResponseFromEnv(version: string): boolean {
  if (!/^\d+(\.\d+){0,3}$/.test(version)) return false;
  const a = version.split(".").map(Number);
  const b = LAST_VERSION_WITHOUT_ENV.split(".").map(Number);
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d > 0;
  }
  return false;
}

/** What the plugin is started with: StartSession's request and answer, and where SSM was reached. */
export interface PluginSession {
  response: { SessionId: string; TokenValue: string; StreamUrl: string };
  request: { Target: string; DocumentName: string; Parameters: Record<string, string[]>; Reason?: string };
  region: string;
  /** The SSM endpoint StartSession went to (the plugin calls SSM there to resume a session). */
  endpoint: string;
  version: string;
}

export interface PluginExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Why it could not even start (spawn failed). */
  error?: string;
}

/** The plugin's argv and environment, as the AWS CLI builds them. */
export function pluginInvocation(s: PluginSession, env: NodeJS.ProcessEnv = process.env): { args: string[]; env: NodeJS.ProcessEnv } {
  const response = JSON.stringify(s.response);
  const viaEnv = readsResponseFromEnv(s.version);
  return {
    // The profile stays empty: the plugin then finds credentials as this process did (AWS_PROFILE, keys, SSO).
    args: [viaEnv ? RESPONSE_ENV : response, s.region, "StartSession", "", JSON.stringify(s.request), s.endpoint],
    env: viaEnv ? { ...env, [RESPONSE_ENV]: response } : env,
  };
}

const KEEP_LINES = 20;

/**
 * One running plugin. Its output is kept (the last lines say why it ended); it is in this process's
 * group, so a terminal's Ctrl-C reaches it as it reaches the CLI's, and `stop` ends it as Ctrl-C would.
 */
export class SessionPlugin {
  private readonly lines: string[] = [];
  private readonly exitListeners: ((exit: PluginExit) => void)[] = [];
  private lineListener?: (line: string) => void;
  exit?: PluginExit;

  private constructor(private readonly child: ChildProcess) {
    const keep = new LineSplitter((line) => {
      if (!line.trim()) return;
      this.lines.push(line);
      if (this.lines.length > KEEP_LINES) this.lines.shift();
      this.lineListener?.(line);
    });
    child.stdout?.on("data", (b: Buffer) => keep.push(b));
    child.stderr?.on("data", (b: Buffer) => keep.push(b));
    const ended = (exit: PluginExit) => {
      if (this.exit) return;
      keep.end();
      this.exit = exit;
      for (const l of this.exitListeners.splice(0)) l(exit);
    };
    child.once("error", (e) => ended({ code: null, signal: null, error: e.message }));
    child.once("close", (code, signal) => ended({ code, signal }));
  }

  static start(session: PluginSession): SessionPlugin {
    const { args, env } = pluginInvocation(session);
    return new SessionPlugin(spawn(PLUGIN, args, { env, stdio: ["ignore", "pipe", "pipe"] }));
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Every line of output from now on (one listener). */
  onLine(listener: ((line: string) => void) | undefined): void {
    this.lineListener = listener;
  }

  /** Called once when the plugin ends, at once if it has. */
  onExit(listener: (exit: PluginExit) => void): void {
    if (this.exit) listener(this.exit);
    else this.exitListeners.push(listener);
  }

  /** How it ended (`when`: " before it listened"...) and what it said last, for a message. */
  describeExit(when = ""): string {
    const e = this.exit;
    const how = !e ? "is still running" : e.error ? `could not start: ${e.error}` : e.signal ? `was killed by ${e.signal}` : `exited with code ${e.code}`;
    const said = this.lines.slice(-3).join(" | ");
    return `${PLUGIN} ${how}${when}${said ? ` (its last output: ${said})` : ""}`;
  }

  /**
   * Resolves with the local port once the plugin says it listens ("Port N opened for sessionId X.",
   * printed by both its port-forwarding modes once the session's data channel is up). Probing the port
   * instead would spend the one connection an older agent's session accepts.
   */
  waitUntilListening(sessionId: string, deadline: number, signal: AbortSignal): Promise<number> {
    const opened = new RegExp(`Port (\\d+) opened for sessionId ${escape(sessionId)}`);
    return new Promise((resolve, reject) => {
      let seen = "";
      const timer = setTimeout(() => finish(new Error(`${PLUGIN} did not open its local port within the SSH deadline`)), Math.max(deadline - Date.now(), 0));
      const onAbort = () => finish(signal.reason instanceof Error ? signal.reason : new Error("interrupted"));
      const onData = (b: Buffer) => {
        seen = (seen + b.toString("utf8")).slice(-4096);
        const m = opened.exec(seen);
        if (m) finish(undefined, Number(m[1]));
      };
      const finish = (error?: Error, port?: number) => {
        clearTimeout(timer);
        signal.removeEventListener("abort", onAbort);
        this.child.stdout?.removeListener("data", onData);
        if (error) reject(error);
        else resolve(port!);
      };
      if (signal.aborted) return onAbort();
      signal.addEventListener("abort", onAbort, { once: true });
      this.child.stdout?.on("data", onData);
      this.onExit(() => finish(new Error(this.describeExit(" before it listened"))));
    });
  }

  /**
   * Ends the plugin as Ctrl-C would (SIGINT: it tells the agent the session is over, then exits), and
   * kills it if it has not exited after `graceMs`.
   */
  async stop(graceMs = 5_000): Promise<void> {
    if (this.exit) return;
    const exited = new Promise<void>((resolve) => this.onExit(() => resolve()));
    this.child.kill("SIGINT");
    const timer = setTimeout(() => this.child.kill("SIGKILL"), graceMs);
    await exited;
    clearTimeout(timer);
  }
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
