import { ChildProcess, spawn } from "node:child_process";
import * as http from "node:http";
import { freeLocalPort } from "./free-port";
import type { Message } from "@aws-sdk/client-sqs";
import type { Logger } from "./log";
import { HandlerOutput } from "./output";
import { stopGroup } from "./process-group";
import { HandlerFailed, RecycleUnit } from "./runtime";
import { sqsdRequest } from "./sqsd-request";

export interface AppProcessOptions {
  command: string;
  slot: number;
  env: NodeJS.ProcessEnv;
  log: Logger;
  queueUrl: string;
  /** Where messages are POSTed. */
  path: string;
  /** Answers 2xx once ready; unset, any HTTP answer at all means ready. */
  healthPath?: string;
  /** Between SIGTERM and SIGKILL when the process is stopped. */
  killGraceMs: number;
}

/** Characters of an answer other than 200 kept for the line that reports the failure. */
const ANSWER_KEPT = 500;

/**
 * One process of the app (WORKER_APP), in a process group of its own, listening on 127.0.0.1 on
 * the port kiln gave it in PORT, and fed one message at a time as sqsd would.
 */
export class AppProcess implements RecycleUnit {
  readonly startedAt = Date.now();
  handled = 0;
  /** Being replaced: it takes no more messages. */
  retiring = false;
  retireWhy = "";
  rssBytes = 0;
  /** The message it is working on, which its output lines are tagged with. */
  current?: Message;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly stderr: () => string[];
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

  private constructor(
    readonly child: ChildProcess,
    readonly port: number,
    private readonly o: AppProcessOptions,
  ) {
    this.exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
    const output = new HandlerOutput(o.log, () => ({ source: "app", slot: o.slot, messageId: this.current?.MessageId }));
    output.attach(child.stdout!, "stdout");
    this.stderr = output.attach(child.stderr!, "stderr");
  }

  static async launch(o: AppProcessOptions): Promise<AppProcess> {
    const port = await freeLocalPort();
    const child = spawn("/bin/sh", ["-c", o.command], {
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...o.env, PORT: String(port), KILN_APP_SLOT: String(o.slot) },
    });
    // A spawn failure shows as an exit; the pool reads it from there.
    child.once("error", () => undefined);
    return new AppProcess(child, port, o);
  }

  get label(): string {
    return `app slot ${this.o.slot} (pid ${this.child.pid})`;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  memoryBytes(): number {
    return this.rssBytes;
  }

  stderrTail(): string[] {
    return this.stderr();
  }

  /** Resolves once the app answers its health check; rejects with why it never will by `deadline`. */
  async waitHealthy(deadline: number): Promise<void> {
    const path = this.o.healthPath || "/";
    for (let wait = 25; ; wait = Math.min(250, wait * 2)) {
      if (!this.alive) {
        const { code, signal } = await this.exited;
        throw new Error(`exited ${signal ? `on ${signal}` : `with ${code}`} before it answered on port ${this.port}`);
      }
      const status = await this.get(path, Math.max(1, Math.min(1_000, deadline - Date.now()))).catch(() => undefined);
      if (status !== undefined && (!this.o.healthPath || (status >= 200 && status < 300))) return;
      if (Date.now() >= deadline) {
        throw new Error(
          status === undefined
            ? `did not answer HTTP on 127.0.0.1:${this.port} (is it listening on $PORT?)`
            : `answered ${status} on ${path}, not 2xx`,
        );
      }
      await Promise.race([new Promise((r) => setTimeout(r, wait)), this.exited]);
    }
  }

  private get(path: string, timeoutMs: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const req = http.get({ host: "127.0.0.1", port: this.port, path, agent: false, timeout: timeoutMs }, (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
        res.on("error", reject);
      });
      req.on("timeout", () => req.destroy(new Error("timed out")));
      req.on("error", reject);
    });
  }

  /** POSTs the message as sqsd would; resolves on 200, rejects with the answer or the broken connection. */
  post(message: Message): Promise<void> {
    const { path, headers } = sqsdRequest(message, this.o.queueUrl, this.o.path);
    const body = Buffer.from(message.Body ?? "", "utf8");
    return new Promise<void>((resolve, reject) => {
      const req = http.request(
        { host: "127.0.0.1", port: this.port, method: "POST", path, agent: this.agent, headers: { ...headers, "Content-Length": body.length } },
        (res) => {
          let answer = "";
          res.setEncoding("utf8");
          res.on("data", (d: string) => {
            if (answer.length < ANSWER_KEPT) answer += d;
          });
          res.on("end", () => {
            if (res.statusCode === 200) return resolve();
            const said = answer.trim().slice(0, ANSWER_KEPT);
            reject(new HandlerFailed(`the app answered ${res.statusCode}${said ? `: ${said}` : ""}`, this.stderr()));
          });
          res.on("error", (e) => reject(new HandlerFailed(`the app's answer broke off: ${e.message}`, this.stderr())));
        },
      );
      req.on("error", (e) => reject(new HandlerFailed(`the app process did not answer: ${e.message}`, this.stderr())));
      req.end(body);
    });
  }

  async stop(graceMs = this.o.killGraceMs): Promise<void> {
    this.agent.destroy();
    await stopGroup(this.child, graceMs);
  }
}
