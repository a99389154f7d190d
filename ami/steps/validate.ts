import * as fs from "node:fs";
import * as path from "node:path";
import { EXIT, INSTALL } from "../../worker/contract";
import { describeWorkerMode } from "../self-check-env";
import { address } from "../ssh";
import type { BakeState } from "../state";
import { Step, StepContext, StepError } from "../step";
import { runAsRoot, Session, sessionOf, sudoHint, sudoRefused } from "./ssh-session";

const STEP = "validate";

/**
 * `kiln-worker run --self-check` as the worker's user, with the installed runtime and the stack's own
 * worker environment (positional NAME=value words): it loads the stack's handler, resolves its
 * command's program, or starts its app and waits for its health check, then stops. A clean
 * environment (env -i) with systemd's default PATH, as kiln-worker.service gets, so nothing of the
 * SSH session helps it along.
 */
export const SELF_CHECK_SCRIPT = `
set -eu
cd "$KILN_STATE_DIR"
set -- env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@" \\
  "$KILN_NODE" "$KILN_BUNDLE_DIR/kiln-worker.js" run --self-check
if command -v runuser >/dev/null 2>&1; then
  exec runuser -u "$KILN_USER" -- "$@"
fi
exec setpriv --reuid="$KILN_USER" --regid="$KILN_USER" --init-groups -- "$@"
`;

/** verify's diagnostics, all of them, on stdout: sudo's own complaints stay on stderr, out of the check. */
export const VERIFY_SCRIPT = `
command -v systemd-analyze >/dev/null 2>&1 || exit 127
cd /
exec systemd-analyze verify "$@" 2>&1
`;

/** The units in the payload, and which of them must be enabled (those with an [Install] section). */
export function payloadUnits(payloadDir: string): { all: string[]; installable: string[] } {
  const dir = path.join(payloadDir, "worker", "systemd");
  const all = fs.readdirSync(dir).filter((f) => f.endsWith(".service")).sort();
  const installable = all.filter((f) => /^WantedBy=/m.test(fs.readFileSync(path.join(dir, f), "utf8")));
  return { all, installable };
}

/**
 * Checks the provisioned builder before anything is cleaned or imaged: the worker starts with the
 * baked runtime, systemd accepts the installed units without one warning, and they are enabled.
 */
export const stepValidate: Step<BakeState> = {
  name: STEP,
  title: "check the worker and its units on the builder",

  async run(state, ctx) {
    const session = sessionOf(state, STEP);
    if (!state.payloadDir) throw new StepError(STEP, "no payload in the bake state", undefined, "the upload step prepares it: run the steps in order");
    await selfCheck(session, state, ctx);
    const units = payloadUnits(state.payloadDir);
    await verifyUnits(session, units.all, ctx);
    await checkEnabled(session, units.installable, ctx);
  },
};

async function selfCheck(session: Session, state: BakeState, ctx: StepContext): Promise<void> {
  const workerEnv = state.settings.selfCheckEnv;
  if (!workerEnv) {
    throw new StepError(STEP, "no worker environment in the bake settings", undefined, "bakeSettings() derives it from the stack file: build the settings with it");
  }
  const mode = describeWorkerMode(workerEnv);
  const env = {
    KILN_USER: INSTALL.user,
    KILN_BUNDLE_DIR: INSTALL.bundleDir,
    KILN_NODE: INSTALL.node,
    KILN_STATE_DIR: INSTALL.stateDir,
  };
  const words = Object.entries(workerEnv)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, value]) => `${name}=${value}`);
  ctx.log(`self-check as ${INSTALL.user} with the stack's ${mode}`);
  const r = await runAsRoot(session, STEP, ["sh", "-c", SELF_CHECK_SCRIPT, "self-check", ...words], ctx, {
    env,
    // An app gets WORKER_APP_START_TIMEOUT to answer its health check, and a moment to stop.
    timeoutMs: (Number(workerEnv.WORKER_APP_START_TIMEOUT) || 0) * 1000 + 90_000,
    timeoutHint: "the self-check hangs: the worker does not start, or the app neither answers nor exits",
  });
  refuseSudo(r, session);
  if (r.code !== 0) {
    throw new StepError(
      STEP,
      `the stack's worker does not start on the image: the self-check of ${mode} exited ${r.code}${r.code === EXIT.CONFIG_ERROR ? " (configuration error)" : ""}`,
      undefined,
      "its output is above: install what it names with kiln:bake.appDir's scripts, or fix the stack's kiln:workerHandler, " +
        "kiln:workerCommand or kiln:workerApp (--on-error=abort keeps the builder to look at)",
    );
  }
  ctx.log("worker self-check passed");
}

async function verifyUnits(session: Session, units: string[], ctx: StepContext): Promise<void> {
  const r = await runAsRoot(session, STEP, ["sh", "-c", VERIFY_SCRIPT, "verify", ...units], ctx, {
    env: { SYSTEMD_LOG_COLOR: "0", SYSTEMD_COLORS: "0", SYSTEMD_PAGER: "cat" },
    timeoutMs: 120_000,
  });
  refuseSudo(r, session);
  if (r.code === 127) {
    throw new StepError(STEP, `systemd-analyze is not installed on ${address(session.target)}`, undefined, "kiln needs it to check the units: use a base image with systemd's tools (AL2023, Debian and Ubuntu have them)");
  }
  // verify reports bad settings as warnings and still exits 0: any output at all is a failure.
  if (r.code !== 0 || r.stdout.trim() !== "") {
    throw new StepError(
      STEP,
      `systemd-analyze verify ${units.join(" ")} exited ${r.code} with:\n${r.stdout.trim()}`,
      undefined,
      "fix the units in worker/systemd (test/worker/systemd checks them locally), or install what they point at",
    );
  }
  ctx.log(`systemd-analyze verify: ${units.join(", ")} clean`);
}

async function checkEnabled(session: Session, units: string[], ctx: StepContext): Promise<void> {
  const r = await runAsRoot(session, STEP, ["systemctl", "is-enabled", ...units], ctx, { timeoutMs: 60_000, quiet: true });
  refuseSudo(r, session);
  const states = r.stdout.trim().split("\n");
  const summary = units.map((u, i) => `${u} ${states[i]?.trim() || "?"}`).join(", ");
  if (r.code !== 0 || states.length !== units.length || states.some((s) => s.trim() !== "enabled")) {
    throw new StepError(STEP, `not every unit is enabled: ${summary}`, undefined, "ami/scripts/provision/50-units.sh enables them: its output says what happened");
  }
  ctx.log(summary);
}

function refuseSudo(r: { code: number; stdout: string; stderr: string }, session: Session): void {
  if (sudoRefused(r)) throw new StepError(STEP, `sudo on ${address(session.target)} asks for a password`, undefined, sudoHint(session.target.user));
}
