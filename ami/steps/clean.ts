import * as fs from "node:fs";
import * as path from "node:path";
import { INSTALL, INSTANCE_ENV_FILE, WORKER_ENV_FILE } from "../../worker/contract";
import { secretScanProgram } from "../secret-scan/bundle";
import { address } from "../ssh";
import type { BakeState } from "../state";
import { Step, StepContext, StepError } from "../step";
import { runAsRoot, Session, sessionOf, sudoHint, sudoRefused } from "./ssh-session";
import { closeTunnel } from "./ssm-tunnel";

const STEP = "clean";

/** Where clean.sh waits on the builder for kiln-seal.service to run it again at shutdown: tmpfs, never imaged. */
export const CLEAN_SCRIPT_ON_BUILDER = "/run/kiln-clean/clean.sh";

/** Where people leave credentials, scanned after the clean; the scan adds every home directory. */
export const SCANNED_DIRECTORIES = ["/root", "/home", "/etc", "/opt", "/srv", "/var/lib", "/tmp", "/var/tmp", "/usr/local/etc"];

/** Absolute paths (a directory's ending in "/") the scan skips: an application's scripts may install it. */
export const SCAN_IGNORE_FILE = "/etc/kiln/secret-scan.ignore";

/** Exit status of the scan program when it found something (ami/secret-scan/scan.ts). */
const SCAN_FOUND = 3;

/** clean.sh from the repository, not the payload: it removes the payload, and itself with it. */
export function cleanScript(root: string): string {
  return fs.readFileSync(path.join(root, "ami", "scripts", "clean.sh"), "utf8");
}

/** Puts clean.sh in /run (it must still be there at shutdown) and runs it, all from stdin. */
const RUN_CLEAN = `set -eu
install -d -m 0700 "$(dirname "$KILN_CLEAN_SCRIPT")"
cat > "$KILN_CLEAN_SCRIPT"
exec sh "$KILN_CLEAN_SCRIPT"
`;

/**
 * The last thing done over SSH: ami/scripts/clean.sh removes (overwriting first) host and
 * authorized keys, histories, credentials, env files, cloud-init state, machine-id, logs, caches and
 * temporary files, and arranges for what services write as the builder stops to go too. Then
 * secretlint's recommended preset scans what is left; a finding fails the bake, naming the files and
 * never their content. Our session survives the clean (sshd keeps what it has loaded), and this step
 * then closes it: no later step may log in again, the keys are gone.
 */
export const stepClean: Step<BakeState> = {
  name: STEP,
  title: "remove keys, credentials, logs and instance state from the builder; scan it for secrets",

  async run(state, ctx) {
    const session = sessionOf(state, STEP);
    const env = {
      KILN_WORKER_ENV: WORKER_ENV_FILE,
      KILN_INSTANCE_ENV: INSTANCE_ENV_FILE,
      KILN_SIZING_DROPIN: INSTALL.sizingDropIn,
      KILN_STATE_DIR: INSTALL.stateDir,
      KILN_CLEAN_SCRIPT: CLEAN_SCRIPT_ON_BUILDER,
    };
    const r = await runAsRoot(session, STEP, ["sh", "-c", RUN_CLEAN], ctx, { env, stdin: cleanScript(state.root), timeoutMs: 10 * 60_000, timeoutHint: "clean.sh is stuck: a package manager lock, or a huge /var/log" });
    refuseSudo(r, session);
    if (r.code !== 0) {
      // Half cleaned is not an image: the bake stops here, and the builder is terminated.
      throw new StepError(STEP, `clean.sh exited ${r.code} on the builder`, undefined, "its output is above; the image was not made. Fix ami/scripts/clean.sh and bake again");
    }
    await scanForSecrets(session, ctx);
    state.connection?.dispose();
    state.connection = undefined;
    ctx.log("SSH session closed: the builder accepts no more logins");
    // Nothing goes over SSH any more: the tunnel would only see the builder stop under it in create-image.
    await closeTunnel(state, STEP, ctx.log);
  },
};

/** secretlint over what the image will hold, with the builder's own (kiln's) Node. */
async function scanForSecrets(session: Session, ctx: StepContext): Promise<void> {
  const program = await secretScanProgram();
  const r = await runAsRoot(session, STEP, [INSTALL.node, "-", "--ignore-file", SCAN_IGNORE_FILE, ...SCANNED_DIRECTORIES], ctx, {
    stdin: program,
    timeoutMs: 15 * 60_000,
    timeoutHint: "the secret scan is still reading: a directory with millions of files under /var/lib or /opt",
  });
  refuseSudo(r, session);
  const found = r.stdout.split("\n").filter((l) => l.startsWith("found "));
  if (r.code === SCAN_FOUND && found.length) {
    const files = [...new Set(found.map((l) => l.slice("found ".length).split(":")[0]))];
    throw new StepError(
      STEP,
      `the secret scan found ${found.length} credential(s) in ${files.length} file(s) the image would hold: ${files.join(", ")}`,
      undefined,
      "the lines above say which rule matched where (never the value). Remove them in the provisioning script that put them " +
        `there, or, for a false positive, have kiln:bake.appDir's script list the path in ${SCAN_IGNORE_FILE}; the image was not made`,
    );
  }
  if (r.code !== 0) {
    throw new StepError(STEP, `the secret scan exited ${r.code} on the builder: ${r.stderr.trim().split("\n").at(-1) ?? ""}`, undefined, "the image was not made; its output is above");
  }
}

function refuseSudo(r: { code: number; stdout: string; stderr: string }, session: Session): void {
  if (sudoRefused(r)) throw new StepError(STEP, `sudo on ${address(session.target)} asks for a password`, undefined, sudoHint(session.target.user));
}
