import { address, connectBefore, exec, SshDeadlineError } from "../ssh";
import type { BakeState } from "../state";
import { Step, StepContext, StepError } from "../step";
import { runAsRoot, sessionOf, sudoHint, sudoRefused } from "./ssh-session";
import { tunnelLost } from "./ssm-tunnel";

const STEP = "wait-for-ssh";

/**
 * Connects to the builder (or the existing host of --target ssh) before a wall-clock deadline,
 * then waits for cloud-init to finish, so provisioning never races the base image's first boot.
 * The connection it opens is used by every later step; clean closes it, this cleanup makes sure.
 */
export const stepWaitForSsh: Step<BakeState> = {
  name: STEP,
  title: "wait for SSH and cloud-init",

  async run(state, ctx) {
    const target = state.ssh;
    if (!target) {
      throw new StepError(STEP, "no SSH target in the bake state", undefined, "run-builder records the builder's address; with --target ssh pass --host");
    }
    const timeoutS = state.settings.sshTimeout;
    const addr = address(target);
    const t0 = Date.now();
    // Through Session Manager, the wait for the SSM agent already counted against the same deadline.
    const deadline = state.sshDeadline ?? t0 + timeoutS * 1000;
    const via = state.tunnel ? ` (Session Manager tunnel to ${state.tunnel.instanceId})` : "";
    ctx.log(`waiting up to ${Math.max(Math.round((deadline - t0) / 1000), 0)} s for SSH on ${addr}${via} as ${target.user}`);
    try {
      state.connection = await connectBefore(target, {
        deadline,
        signal: ctx.signal,
        onWaiting: (reason) => ctx.log(`not yet: ${reason}`),
        hopeless: () => tunnelLost(state),
      });
    } catch (e) {
      if (e instanceof SshDeadlineError) {
        const lost = tunnelLost(state);
        throw new StepError(
          STEP,
          lost ? `lost the way to ${addr}: ${e.lastReason}` : `gave up on ${addr} after ${timeoutS} s: ${e.lastReason}`,
          undefined,
          lost ? "session-manager-plugin's output above says why; bake again, or use kiln:bake.sshInterface private_ip" : unreachableHint(state, target.user),
        );
      }
      if (/^Cannot parse privateKey/.test((e as Error).message)) {
        throw new StepError(STEP, `the SSH private key for ${addr} is unusable: ${(e as Error).message}`, undefined, "pass an OpenSSH or PEM private key without a passphrase (--key)");
      }
      throw e;
    }
    ctx.log(`connected to ${addr} after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    await waitForCloudInit(state, ctx, timeoutS);
  },

  async cleanup(state) {
    state.connection?.dispose();
    state.connection = undefined;
  },
};

function unreachableHint(state: BakeState, user: string): string {
  const rest = `and that ${user} is the base image's login user (kiln:bake.sshUser); a slow first boot needs a longer deadline: kiln:bake.sshTimeout or --ssh-timeout <seconds>`;
  return state.tunnel
    ? `Session Manager reached the builder's agent, but nothing answered on its port 22 through it: check that sshd runs on the base image, ${rest}`
    : `check that the security group admits your address on the SSH port, that the subnet routes to it, ${rest}`;
}

/**
 * `cloud-init status --wait`: 0 is done, 2 is done with recoverable errors (cloud-init 23.4 and
 * later; a deprecated key in user data is enough), anything else failed. A host without cloud-init
 * (an existing server, the debootstrap test root) has nothing to wait for.
 */
async function waitForCloudInit(state: BakeState, ctx: StepContext, timeoutS: number): Promise<void> {
  const session = sessionOf(state, STEP);
  const probe = await exec(session.ssh, "command -v cloud-init", { signal: ctx.signal });
  if (probe.code !== 0) {
    ctx.log("cloud-init is not installed on this host: nothing to wait for");
    return;
  }
  ctx.log("waiting for cloud-init to finish");
  const r = await runAsRoot(session, STEP, ["cloud-init", "status", "--wait"], ctx, {
    timeoutMs: timeoutS * 1000,
    timeoutHint: "cloud-init is still running its modules: /var/log/cloud-init-output.log on the builder says which",
  });
  if (sudoRefused(r)) throw new StepError(STEP, `sudo on ${address(session.target)} asks for a password`, undefined, sudoHint(session.target.user));
  if (r.code === 0) ctx.log("cloud-init: done");
  else if (r.code === 2) ctx.log("cloud-init: done with recoverable errors (exit 2); /var/log/cloud-init.log on the builder says which");
  else {
    throw new StepError(
      STEP,
      `cloud-init failed on ${address(session.target)} (cloud-init status --wait exited ${r.code})`,
      undefined,
      "read /var/log/cloud-init.log and cloud-init-output.log on the builder (--on-error=abort keeps it); the base image or its user data is at fault",
    );
  }
}
