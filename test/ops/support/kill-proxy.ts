import * as http from "node:http";
import type { AddressInfo } from "node:net";

export type KillMoment = "before-sqs" | "after-sqs" | "after-answer";

/**
 * A proxy in front of an SQS endpoint that kills a process at a chosen call: before the call
 * reaches SQS, after SQS carried it out but before the caller heard (the worst moment for a
 * send or a delete), or just after the caller got the answer. Counts every SQS operation.
 */
export class KillProxy {
  readonly seen: string[] = [];
  private plan?: { operation?: string; nth: number; moment: KillMoment; pid: () => number | undefined; fired?: (op: string) => void };
  private count = 0;

  private constructor(
    private readonly server: http.Server,
    readonly endpoint: string,
    private readonly upstream: string,
  ) {}

  static async start(upstream: string): Promise<KillProxy> {
    let p!: KillProxy;
    const server = http.createServer((req, res) => void p.handle(req, res));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    p = new KillProxy(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`, upstream);
    return p;
  }

  /** Kills `pid()` at the `nth` call (of `operation`, or of any operation), at `moment`. */
  arm(plan: NonNullable<KillProxy["plan"]>): void {
    this.plan = plan;
    this.count = 0;
  }

  disarm(): void {
    this.plan = undefined;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  private kill(op: string): void {
    const pid = this.plan?.pid();
    const fired = this.plan?.fired;
    this.plan = undefined;
    if (pid) process.kill(pid, "SIGKILL");
    fired?.(op);
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const op = String(req.headers["x-amz-target"] ?? "").split(".").pop() || "other";
    this.seen.push(op);
    const due = this.plan && (!this.plan.operation || this.plan.operation === op) && ++this.count === this.plan.nth ? this.plan.moment : undefined;
    if (due === "before-sqs") {
      this.kill(op);
      req.socket.destroy();
      return;
    }
    const target = new URL(req.url ?? "/", this.upstream);
    const upstream = await new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }>((resolve, reject) => {
      const up = http.request(target, { method: req.method, headers: { ...req.headers, host: target.host } }, (r) => {
        const parts: Buffer[] = [];
        r.on("data", (d) => parts.push(d));
        r.on("end", () => resolve({ status: r.statusCode ?? 502, headers: r.headers, body: Buffer.concat(parts) }));
      });
      up.on("error", reject);
      up.end(Buffer.concat(chunks));
    }).catch(() => undefined);
    if (!upstream) {
      res.writeHead(502);
      res.end();
      return;
    }
    if (due === "after-sqs") {
      this.kill(op);
      req.socket.destroy();
      return;
    }
    res.writeHead(upstream.status, upstream.headers);
    res.end(upstream.body, () => {
      if (due === "after-answer") this.kill(op);
    });
  }
}
