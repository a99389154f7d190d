import type { Readable } from "node:stream";
import { NodeSSH } from "node-ssh";
import type { SshTarget } from "./state";
import { sleep } from "./sleep";

/**
 * The SSH side of a bake, over node-ssh: connect before a wall-clock deadline, run a command with
 * its output as lines and its exit code, run it as root, stream a file in through stdin. Abortable
 * throughout: a Ctrl-C must not wait out a handshake or a provisioning script.
 */

/** Given up before the deadline: the message names the address and the last reason it was refused. */
export class SshDeadlineError extends Error {
  constructor(
    readonly address: string,
    readonly lastReason: string,
    readonly waitedMs: number,
  ) {
    super(`no SSH on ${address} after ${Math.round(waitedMs / 1000)} s (last: ${lastReason})`);
    this.name = "SshDeadlineError";
  }
}

/** A command that was aborted, or lost its connection, before it exited. */
export class SshCommandError extends Error {
  constructor(
    message: string,
    readonly kind: "timeout" | "lost" | "aborted",
  ) {
    super(message);
    this.name = "SshCommandError";
  }
}

export function address(target: Pick<SshTarget, "host" | "port">): string {
  return target.host.includes(":") ? `[${target.host}]:${target.port}` : `${target.host}:${target.port}`;
}

export interface ConnectOptions {
  /** Epoch milliseconds: no attempt starts, and none lasts, past it. */
  deadline: number;
  signal: AbortSignal;
  /** Called when the reason SSH is not up yet changes (refused, timed out, auth...). */
  onWaiting?(reason: string): void;
  /** Pause between attempts; the default suits a booting EC2 instance. */
  retryDelayMs?: number;
  /** A reason no later attempt can succeed (the tunnel SSH goes through has ended), checked after each failed one. */
  hopeless?(): string | undefined;
}

/** Per attempt: long enough for a slow handshake, short enough to retry a silently dropped SYN. */
const MAX_ATTEMPT_MS = 20_000;

/**
 * Connects, retrying until `deadline`. A booting instance refuses, resets, times out and rejects
 * the key (before cloud-init installs it) in turn: every failure is retried until the deadline,
 * never a fixed number of times.
 */
export async function connectBefore(target: SshTarget, opts: ConnectOptions): Promise<NodeSSH> {
  const started = Date.now();
  const addr = address(target);
  let lastReason = "no attempt made";
  for (;;) {
    throwIfAborted(opts.signal);
    const remaining = opts.deadline - Date.now();
    if (remaining <= 0) throw new SshDeadlineError(addr, lastReason, Date.now() - started);
    const ssh = new NodeSSH();
    try {
      await abortable(
        ssh.connect({
          host: target.host,
          port: target.port,
          username: target.user,
          privateKey: target.privateKey,
          readyTimeout: Math.max(Math.min(remaining, MAX_ATTEMPT_MS), 100),
          // A long dnf install is silent for minutes; NAT and firewalls drop idle connections.
          keepaliveInterval: 15_000,
          keepaliveCountMax: 4,
        }),
        opts.signal,
        () => ssh.connection?.destroy(),
      );
    } catch (e) {
      ssh.connection?.destroy();
      if (opts.signal.aborted) throw abortReason(opts.signal);
      // A key ssh2 cannot read stays unreadable: no point waiting out the deadline.
      if (/^Cannot parse privateKey/.test((e as Error).message ?? "")) throw e;
      const reason = describe(e);
      const hopeless = opts.hopeless?.();
      if (hopeless) throw new SshDeadlineError(addr, `${reason}; ${hopeless}`, Date.now() - started);
      if (reason !== lastReason) opts.onWaiting?.(reason);
      lastReason = reason;
      await sleep(Math.min(opts.retryDelayMs ?? 2_000, Math.max(opts.deadline - Date.now(), 0)), opts.signal);
      continue;
    }
    // node-ssh listens for 'error' only while a call is pending: without a listener of our own, a
    // reset between two commands (the builder rebooting) would crash the process.
    ssh.connection?.on("error", () => undefined);
    return ssh;
  }
}

export interface ExecOptions {
  signal?: AbortSignal;
  /** Every complete line of output, as it arrives, without its newline. */
  onLine?(line: string, stream: "stdout" | "stderr"): void;
  stdin?: string | Readable;
  /** Gives up (closing the channel) after this long. */
  timeoutMs?: number;
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `command` and returns its exit code (node-ssh's `exec` throws away the code; `execCommand`
 * keeps it). A command that ends without one, because the connection dropped or a signal killed
 * it, or that is aborted, throws.
 */
export async function exec(ssh: NodeSSH, command: string, opts: ExecOptions = {}): Promise<ExecResult> {
  // ssh2's ClientChannel, of which only these two are used (ssh2 ships no types here).
  let channel: { signal(name: string): void; close(): void } | undefined;
  const out = new LineSplitter((l) => opts.onLine?.(l, "stdout"));
  const err = new LineSplitter((l) => opts.onLine?.(l, "stderr"));
  const timeout = opts.timeoutMs === undefined ? undefined : AbortSignal.timeout(opts.timeoutMs);
  const signal = timeout && opts.signal ? AbortSignal.any([opts.signal, timeout]) : (timeout ?? opts.signal);
  const close = () => {
    try {
      // Not every sshd honours a signal request; closing the channel always ends the session, and
      // the command gets SIGPIPE on its next write.
      channel?.signal("KILL");
    } catch {
      /* not supported */
    }
    channel?.close();
  };
  const result = await abortable(
    ssh.execCommand(command, {
      stdin: opts.stdin,
      noTrim: true,
      onChannel: (c) => (channel = c),
      onStdout: (chunk) => out.push(chunk),
      onStderr: (chunk) => err.push(chunk),
    }),
    signal,
    close,
  ).catch((e: unknown) => {
    if (timeout?.aborted && !opts.signal?.aborted) throw new SshCommandError(`timed out after ${Math.round(opts.timeoutMs! / 1000)} s`, "timeout");
    throw e;
  });
  out.end();
  err.end();
  if (result.code === null) {
    throw new SshCommandError(result.signal ? `killed by signal ${result.signal}` : "the connection closed before the command exited", "lost");
  }
  return { code: result.code, stdout: result.stdout, stderr: result.stderr };
}

/** Single-quotes `s` for a POSIX shell. */
export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_\/.,:=@%+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * The command line that runs `argv` as root, with `env` set: directly when the SSH user is root,
 * else through `sudo -n`, which fails at once instead of waiting for a password nobody will type.
 * `env` rather than sudo's own environment handling, which sudoers policies usually strip.
 */
export function asRoot(user: string, argv: string[], env: Record<string, string> = {}): string {
  const vars = Object.entries(env).map(([k, v]) => `${k}=${v}`);
  const words = [...(user === "root" ? [] : ["sudo", "-n", "--"]), ...(vars.length ? ["env", ...vars] : []), ...argv];
  return words.map(shellQuote).join(" ");
}

/** Splits a byte stream into lines; a partial last line is flushed by `end`. */
export class LineSplitter {
  private rest = "";
  private readonly decoder = new TextDecoder("utf-8");

  constructor(private readonly onLine: (line: string) => void) {}

  push(chunk: Buffer): void {
    const text = this.rest + this.decoder.decode(chunk, { stream: true });
    const lines = text.split("\n");
    this.rest = lines.pop()!;
    for (const line of lines) this.onLine(line.replace(/\r$/, ""));
  }

  end(): void {
    const last = this.rest + this.decoder.decode();
    this.rest = "";
    if (last !== "") this.onLine(last.replace(/\r$/, ""));
  }
}

function describe(e: unknown): string {
  const err = e as { level?: string; message?: string };
  if (err?.level === "client-authentication") return "the key was refused (not installed yet, or the wrong user)";
  return err?.message ?? String(e);
}

function abortReason(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new SshCommandError("aborted", "aborted");
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortReason(signal);
}

/** `promise`, or the signal's reason as soon as it aborts (after calling `onAbort` to stop the work). */
async function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined, onAbort: () => void): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) {
    onAbort();
    promise.catch(() => undefined);
    throw abortReason(signal);
  }
  let listener!: () => void;
  const aborted = new Promise<never>((_, reject) => {
    listener = () => {
      onAbort();
      reject(abortReason(signal));
    };
    signal.addEventListener("abort", listener, { once: true });
  });
  promise.catch(() => undefined);
  try {
    return await Promise.race([promise, aborted]);
  } finally {
    signal.removeEventListener("abort", listener);
  }
}

