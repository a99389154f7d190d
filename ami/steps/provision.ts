import * as fs from "node:fs";
import * as path from "node:path";
import { INSTALL } from "../../worker/contract";
import { remotePayloadDir } from "../payload";
import { address } from "../ssh";
import type { BakeState } from "../state";
import { Step, StepError } from "../step";
import { runAsRoot, sessionOf, sudoHint, sudoRefused } from "./ssh-session";

const STEP = "provision";

export interface ProvisionScript {
  /** Path inside the payload: scripts/provision/10-user.sh. */
  file: string;
  /** From the script's `# step:` line: "create the kiln-worker system user". */
  title: string;
}

/**
 * The payload's provisioning scripts in the order they run: kiln's (by number), then the
 * application's own from kiln:bake.appDir (by number), so an application installs onto a host
 * that already has the worker's user and directories.
 */
export function provisionScripts(payloadDir: string): ProvisionScript[] {
  const numbered = (rel: string, label: (title: string) => string) => {
    const dir = path.join(payloadDir, rel);
    if (!fs.existsSync(dir)) return [];
    return fs
      .readdirSync(dir)
      .filter((f) => /^\d+-.+\.sh$/.test(f))
      .sort()
      .map((f) => {
        const text = fs.readFileSync(path.join(dir, f), "utf8");
        const title = /^# step: (.+)$/m.exec(text)?.[1]?.trim() ?? f;
        return { file: `${rel}/${f}`, title: label(title) };
      });
  };
  return [...numbered("scripts/provision", (t) => t), ...numbered("app", (t) => `application: ${t}`)];
}

/**
 * What the scripts know about the bake, as environment variables: the install paths come from the
 * worker contract, so the scripts and the units can never disagree on where things are.
 */
export function scriptEnv(state: BakeState): Record<string, string> {
  if (!/^[A-Za-z0-9._-]+$/.test(state.settings.stack)) {
    throw new StepError(STEP, `stack name ${JSON.stringify(state.settings.stack)} is not usable in a log group name`);
  }
  return {
    KILN_PAYLOAD: remotePayloadDir(state.buildId),
    // The application's directory (kiln:bake.appDir) as uploaded: its scripts install from here.
    KILN_APP: `${remotePayloadDir(state.buildId)}/app`,
    KILN_STACK: state.settings.stack,
    KILN_REGION: state.settings.region,
    KILN_USER: INSTALL.user,
    KILN_BUNDLE_DIR: INSTALL.bundleDir,
    KILN_NODE: INSTALL.node,
    KILN_STATE_DIR: INSTALL.stateDir,
  };
}

/**
 * Runs ami/scripts/provision/*.sh on the builder as root, in order, each one job, streamed with a
 * counter ("[3/7] install the Node runtime"). The first script to fail stops the bake.
 */
export const stepProvision: Step<BakeState> = {
  name: STEP,
  title: "provision the builder",

  async run(state, ctx) {
    const session = sessionOf(state, STEP);
    if (!state.payloadDir) throw new StepError(STEP, "no payload in the bake state", undefined, "the upload step prepares and sends it: run the steps in order");
    const scripts = provisionScripts(state.payloadDir);
    if (scripts.length === 0) throw new StepError(STEP, `no provisioning scripts in ${state.payloadDir}/scripts/provision`);
    const env = scriptEnv(state);
    for (const [i, script] of scripts.entries()) {
      ctx.log(`[${i + 1}/${scripts.length}] ${script.title}`);
      const t0 = Date.now();
      const r = await runAsRoot(session, STEP, ["sh", `${env.KILN_PAYLOAD}/${script.file}`], ctx, { env });
      if (sudoRefused(r)) throw new StepError(STEP, `sudo on ${address(session.target)} asks for a password`, undefined, sudoHint(session.target.user));
      if (r.code !== 0) {
        throw new StepError(
          STEP,
          `${script.file} (${script.title}) exited ${r.code}`,
          undefined,
          `its output is above; fix ${script.file.startsWith("app/") ? `kiln:bake.appDir's ${script.file.slice(4)}` : `ami/${script.file}`} or the base image, and bake again (--on-error=abort keeps the builder to look at)`,
        );
      }
      ctx.log(`[${i + 1}/${scripts.length}] done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    }
  },
};
