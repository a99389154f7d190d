import { spawn } from "node:child_process";
import * as path from "node:path";
import type { Message } from "@aws-sdk/client-sqs";
import type { Processor } from "./consumer";
import { WorkerConfigError } from "./settings";

/** Seconds a command gets between SIGTERM and SIGKILL once it is to be stopped. */
const KILL_GRACE_MS = 5_000;

type Handle = (message: Message, ctx: { signal: AbortSignal }) => unknown;

/** WORKER_HANDLER: a module exporting `handle(message, { signal })`, loaded once at start. */
export function handlerProcessor(modulePath: string): Processor {
  const resolved = path.resolve(modulePath);
  let mod: { handle?: Handle; default?: Handle | { handle?: Handle } };
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    mod = require(resolved);
  } catch (e) {
    throw new WorkerConfigError("WORKER_HANDLER", `cannot be loaded from ${resolved}: ${(e as Error).message}`);
  }
  const handle =
    mod.handle ?? (typeof mod.default === "function" ? mod.default : (mod.default as { handle?: Handle } | undefined)?.handle);
  if (typeof handle !== "function") {
    throw new WorkerConfigError("WORKER_HANDLER", `${resolved} exports no handle(message, { signal }) function`);
  }
  return async (message, signal) => {
    await handle(message, { signal });
  };
}

/**
 * WORKER_COMMAND: one process per message through /bin/sh, the body on stdin, the message id and
 * receive count in its environment, exit 0 for done. An existing worker script plugs in unchanged.
 * It runs in its own process group, so a timeout stops everything it started, not just the shell.
 */
export function commandProcessor(command: string, baseEnv: NodeJS.ProcessEnv = process.env): Processor {
  return (message, signal) =>
    new Promise<void>((resolve, reject) => {
      const child = spawn("/bin/sh", ["-c", command], {
        detached: true,
        stdio: ["pipe", "inherit", "inherit"],
        env: {
          ...baseEnv,
          KILN_MESSAGE_ID: message.MessageId ?? "",
          KILN_RECEIVE_COUNT: message.Attributes?.ApproximateReceiveCount ?? "1",
        },
      });
      let killTimer: NodeJS.Timeout | undefined;
      const killGroup = (sig: NodeJS.Signals) => {
        try {
          process.kill(-child.pid!, sig);
        } catch {
          // Already gone.
        }
      };
      const onAbort = () => {
        killGroup("SIGTERM");
        killTimer = setTimeout(() => killGroup("SIGKILL"), KILL_GRACE_MS);
      };
      signal.addEventListener("abort", onAbort, { once: true });
      child.once("error", (e) => reject(new Error(`WORKER_COMMAND could not start: ${e.message}`)));
      child.once("exit", (code, sig) => {
        signal.removeEventListener("abort", onAbort);
        clearTimeout(killTimer);
        // Whatever the shell left behind goes too.
        killGroup("SIGKILL");
        if (code === 0) resolve();
        else reject(new Error(sig ? `command killed by ${sig}` : `command exited with ${code}`));
      });
      // A command that never reads its stdin must not fail the message on EPIPE.
      child.stdin!.on("error", () => undefined);
      child.stdin!.end(message.Body ?? "");
    });
}
