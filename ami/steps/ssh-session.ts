import type { NodeSSH } from "node-ssh";
import { address, asRoot, exec, ExecOptions, ExecResult, SshCommandError } from "../ssh";
import type { BakeState, SshTarget } from "../state";
import { StepContext, StepError } from "../step";
import { tunnelLost, tunnelLostSoon } from "./ssm-tunnel";

/** What the SSH-side steps (upload .. clean) share: the open connection and who it logged in as. */
export interface Session {
  ssh: NodeSSH;
  target: SshTarget;
  /** Why the connection broke, when the Session Manager tunnel it went through has ended. */
  tunnelLost?(): Promise<string | undefined>;
}

/** The connection wait-for-ssh opened; a step that runs without one is a wiring mistake. */
export function sessionOf(state: BakeState, step: string): Session {
  if (!state.connection?.isConnected() || !state.ssh) {
    const lost = tunnelLost(state);
    throw new StepError(
      step,
      state.ssh ? `the SSH connection to ${address(state.ssh)} is closed${lost ? `: ${lost}` : ""}` : "no SSH target in the bake state",
      undefined,
      lost ? LOST_HINT : "wait-for-ssh opens the connection: run the steps in order (the builder may also have rebooted or stopped)",
    );
  }
  return { ssh: state.connection, target: state.ssh, tunnelLost: () => tunnelLostSoon(state) };
}

const LOST_HINT = "session-manager-plugin's output says why the tunnel ended; bake again (nothing is kept), or use kiln:bake.sshInterface private_ip";

export interface RootRun extends Omit<ExecOptions, "onLine" | "signal"> {
  env?: Record<string, string>;
  /** What to do when `timeoutMs` passes. */
  timeoutHint?: string;
  /** Keep stdout out of the log (stderr is logged still). */
  quiet?: boolean;
}

/**
 * Runs `argv` as root on the builder, every output line to the step's log, and returns the result
 * whatever the exit code. Losing the connection or being aborted becomes a StepError.
 */
export async function runAsRoot(session: Session, step: string, argv: string[], ctx: StepContext, opts: RootRun = {}): Promise<ExecResult> {
  const command = asRoot(session.target.user, argv, opts.env);
  try {
    return await exec(session.ssh, command, { stdin: opts.stdin, timeoutMs: opts.timeoutMs, signal: ctx.signal, onLine: (line, stream) => (opts.quiet && stream === "stdout" ? undefined : ctx.log(line)) });
  } catch (e) {
    if (ctx.signal.aborted) throw e;
    const what = `${argv.join(" ")} on ${address(session.target)}`;
    const lost = await session.tunnelLost?.();
    if (lost) throw new StepError(step, `${what}: ${(e as Error).message}: ${lost}`, undefined, LOST_HINT);
    if (e instanceof SshCommandError) {
      if (e.kind === "timeout") throw new StepError(step, `${what}: ${e.message}`, undefined, opts.timeoutHint);
      throw new StepError(step, `${what}: ${e.message}`, undefined, "the builder stopped answering: check that it is still running");
    }
    throw e;
  }
}

/** `sudo -n` refuses with this when the user has no passwordless sudo. */
export function sudoRefused(result: ExecResult): boolean {
  return result.code === 1 && /sudo: (a password is required|a terminal is required)/.test(result.stderr);
}

export function sudoHint(user: string): string {
  return `${user} needs passwordless sudo (AL2023's ec2-user and Ubuntu/Debian's default users have it), or connect as root`;
}
