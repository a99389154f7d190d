import * as fs from "node:fs";
import * as path from "node:path";
import { INSTALL, INSTANCE_ENV_FILE, WORKER_ENV_FILE } from "../../worker/contract";
import { address } from "../ssh";
import type { BakeState } from "../state";
import { Step, StepError } from "../step";
import { runAsRoot, sessionOf, sudoHint, sudoRefused } from "./ssh-session";
import { closeTunnel } from "./ssm-tunnel";

const STEP = "clean";

/** clean.sh from the repository, not the payload: it removes the payload, and itself with it. */
export function cleanScript(root: string): string {
  return fs.readFileSync(path.join(root, "ami", "scripts", "clean.sh"), "utf8");
}

/**
 * The last thing done over SSH: ami/scripts/clean.sh, fed to a root shell on stdin, removes host
 * and authorized keys, histories, credentials, env files, cloud-init state, machine-id, logs,
 * caches and temporary files. Our session survives it (sshd keeps what it has loaded), and this
 * step then closes it: no later step may log in again, the keys are gone.
 */
export const stepClean: Step<BakeState> = {
  name: STEP,
  title: "remove keys, logs and instance state from the builder",

  async run(state, ctx) {
    const session = sessionOf(state, STEP);
    const env = {
      KILN_WORKER_ENV: WORKER_ENV_FILE,
      KILN_INSTANCE_ENV: INSTANCE_ENV_FILE,
      KILN_SIZING_DROPIN: INSTALL.sizingDropIn,
      KILN_STATE_DIR: INSTALL.stateDir,
    };
    const r = await runAsRoot(session, STEP, ["sh", "-s"], ctx, { env, stdin: cleanScript(state.root), timeoutMs: 10 * 60_000, timeoutHint: "clean.sh is stuck: a package manager lock, or a huge /var/log" });
    if (sudoRefused(r)) throw new StepError(STEP, `sudo on ${address(session.target)} asks for a password`, undefined, sudoHint(session.target.user));
    if (r.code !== 0) {
      // Half cleaned is not an image: the bake stops here, and the builder is terminated.
      throw new StepError(STEP, `clean.sh exited ${r.code} on the builder`, undefined, "its output is above; the image was not made. Fix ami/scripts/clean.sh and bake again");
    }
    state.connection?.dispose();
    state.connection = undefined;
    ctx.log("SSH session closed: the builder accepts no more logins");
    // Nothing goes over SSH any more: the tunnel would only see the builder stop under it in create-image.
    await closeTunnel(state, STEP, ctx.log);
  },
};
