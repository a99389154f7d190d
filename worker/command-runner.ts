import { ChildProcess, spawn } from "node:child_process";
import { EventEmitter } from "node:events";
import type { Message } from "@aws-sdk/client-sqs";
import { ReleaseMessage, type StopSignal } from "./consumer";
import type { Logger } from "./log";
import { HandlerOutput, outputEnded } from "./output";
import { signalGroup, stopGroup } from "./process-group";
import { checkProgram } from "./program";
import { HandlerFailed, HandlerRuntime, RecycleUnit, RuntimeEvents } from "./runtime";
import { WorkerConfigError } from "./settings";

/** Exit codes of `sh -c` for a program it could not execute (126) or find (127). */
const CANNOT_RUN: Record<number, string> = { 126: "could not be executed", 127: "was not found" };

/** The message's attributes for a process's environment: all of them as JSON, and one variable each. */
export function attributeEnv(message: Message): Record<string, string> {
  const values: Record<string, string> = {};
  for (const [name, a] of Object.entries(message.MessageAttributes ?? {})) {
    values[name] = a.StringValue ?? (a.BinaryValue ? Buffer.from(a.BinaryValue).toString("base64") : "");
  }
  const env: Record<string, string> = { KILN_MESSAGE_ATTRIBUTES: JSON.stringify(values) };
  for (const [name, value] of Object.entries(values)) env[`KILN_ATTR_${name.replace(/[^A-Za-z0-9_]/g, "_")}`] = value;
  return env;
}

export interface CommandRunnerOptions {
  command: string;
  maxWorkers: number;
  /** Between SIGTERM and SIGKILL when a command is stopped. */
  killGraceMs: number;
  env: NodeJS.ProcessEnv;
  log: Logger;
}

/**
 * WORKER_COMMAND: one process per message through /bin/sh, the body on stdin, the message id,
 * receive count and attributes in its environment, exit 0 for done. An existing worker script plugs
 * in unchanged. Each runs in a process group of its own, so stopping it stops everything it started,
 * and its output is logged line by line, tagged with the message id.
 */
export class CommandRunner extends EventEmitter<RuntimeEvents> implements HandlerRuntime {
  readonly kind = "command";
  private readonly running = new Set<ChildProcess>();

  constructor(private readonly o: CommandRunnerOptions) {
    super();
  }

  async start(): Promise<void> {
    checkProgram("WORKER_COMMAND", this.o.command, this.o.env);
  }

  capacity(): number {
    return this.o.maxWorkers;
  }

  units(): RecycleUnit[] {
    return [];
  }

  recycle(): void {
    // Every message already runs in a fresh process.
  }

  pids(): number[] {
    return [...this.running].map((c) => c.pid!).filter(Boolean);
  }

  windDown(): void {
    // Nothing is replaced in command mode.
  }

  async stop(): Promise<void> {
    // The drain settled every message, so only a command's leftovers can be here: none may outlive the worker.
    await Promise.all([...this.running].map((c) => stopGroup(c, 0)));
  }

  readonly process = (message: Message, signal: StopSignal): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      const child = spawn("/bin/sh", ["-c", this.o.command], {
        detached: true,
        stdio: ["pipe", "pipe", "pipe"],
        env: {
          ...this.o.env,
          KILN_MESSAGE_ID: message.MessageId ?? "",
          KILN_RECEIVE_COUNT: message.Attributes?.ApproximateReceiveCount ?? "1",
          ...attributeEnv(message),
        },
      });
      this.running.add(child);
      const output = new HandlerOutput(this.o.log, () => ({ source: "command", messageId: message.MessageId }));
      output.attach(child.stdout!, "stdout");
      const stderr = output.attach(child.stderr!, "stderr");

      let stopping: Promise<void> | undefined;
      const onAbort = () => (stopping = stopGroup(child, this.o.killGraceMs));
      signal.addEventListener("abort", onAbort, { once: true });
      child.once("error", (e) => {
        this.running.delete(child);
        reject(new Error(`WORKER_COMMAND could not start: ${e.message}`));
      });
      child.once("exit", async (code, sig) => {
        signal.removeEventListener("abort", onAbort);
        // Whatever the shell left behind goes too, before the slot is given to another message.
        signalGroup(child, "SIGKILL");
        await stopping;
        // A process that left the group may hold the pipes open: its output is not worth the slot.
        await Promise.race([outputEnded(child.stdout, child.stderr), new Promise((r) => setTimeout(r, 1_000))]);
        child.stdout!.destroy();
        child.stderr!.destroy();
        this.running.delete(child);
        if (code === 0) return resolve();
        if (code !== null && CANNOT_RUN[code] && !signal.aborted) {
          const error = new WorkerConfigError("WORKER_COMMAND", `${CANNOT_RUN[code]} by /bin/sh (exit ${code}): ${stderr().join(" / ") || this.o.command}`);
          this.emit("config-error", error);
          return reject(new ReleaseMessage(error.message));
        }
        reject(new HandlerFailed(sig ? `command killed by ${sig}` : `command exited with ${code}`, stderr()));
      });
      // A command that never reads its stdin must not fail the message on EPIPE.
      child.stdin!.on("error", () => undefined);
      child.stdin!.end(message.Body ?? "");
    });
}
