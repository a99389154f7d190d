import * as http from "node:http";
import type { AddressInfo } from "node:net";

/**
 * One AWS request as it passes the proxy: the service from its SigV4 credential scope, the
 * operation from X-Amz-Target (JSON protocols), the form's Action (query protocols) or the
 * rpcv2 path, and its body.
 */
export interface ProxiedCall {
  service: string;
  operation: string;
  /** JSON protocols: the parsed body; query protocols: the form's fields. */
  input: Record<string, unknown>;
  protocol: "json" | "query";
  /** Set when the answer was a failure (injected or served). */
  failed?: string;
}

/** An answer the proxy gives itself instead of forwarding. */
export interface FakeAnswer {
  status?: number;
  /** JSON protocols: an object; query protocols: the XML result's inner elements. */
  body: unknown;
}

export type FakeHandler = (call: ProxiedCall) => Promise<FakeAnswer> | FakeAnswer;

/** An AWS error as the proxy answers it, in the call's own protocol. */
export class AwsFault extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

interface Injection {
  operation: string;
  fault: AwsFault | "reset";
  remaining: number;
}

/**
 * A small HTTP proxy in front of an AWS emulator (moto, or the embedded SQS): every call is
 * recorded; calls a fake serves (what moto lacks: message move tasks, instance refresh, EC2's
 * quotas in Service Quotas) are answered here; any call can be failed on demand, as an AWS error
 * in its protocol or a dropped connection. Binds 127.0.0.1.
 */
export class AwsProxy {
  readonly calls: ProxiedCall[] = [];
  private readonly handlers = new Map<string, FakeHandler>();
  private readonly injections: Injection[] = [];

  private constructor(
    private readonly server: http.Server,
    readonly endpoint: string,
    readonly upstream: string,
  ) {}

  static async start(upstream: string): Promise<AwsProxy> {
    let proxy!: AwsProxy;
    const server = http.createServer((req, res) => void proxy.handle(req, res));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    proxy = new AwsProxy(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`, upstream);
    return proxy;
  }

  /** Serves `service`'s `operation` here instead of upstream. */
  serve(service: string, operation: string, handler: FakeHandler): void {
    this.handlers.set(`${service}:${operation}`, handler);
  }

  /** Drops every failure asked for and not yet given. */
  clearFaults(): void {
    this.injections.length = 0;
  }

  /** Forwards `operation` upstream again. */
  unserve(service: string, operation: string): void {
    this.handlers.delete(`${service}:${operation}`);
  }

  /** The next `times` calls of `operation` (any service) fail with `fault`, or have their connection dropped. */
  failNext(operation: string, fault: AwsFault | "reset", times = 1): void {
    this.injections.push({ operation, fault, remaining: times });
  }

  operations(service?: string): string[] {
    return this.calls.filter((c) => !service || c.service === service).map((c) => c.operation);
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks);
    const call = describe(req, raw);
    this.calls.push(call);

    const injected = this.injections.find((i) => i.operation === call.operation && i.remaining > 0);
    if (injected) {
      injected.remaining--;
      if (injected.fault === "reset") {
        call.failed = "reset";
        req.socket.destroy();
        return;
      }
      return this.fail(res, call, injected.fault);
    }
    const handler = this.handlers.get(`${call.service}:${call.operation}`);
    if (handler) {
      try {
        const answer = await handler(call);
        return this.answer(res, call, answer);
      } catch (e) {
        if (e instanceof AwsFault) return this.fail(res, call, e);
        return this.fail(res, call, new AwsFault("InternalFailure", (e as Error).message, 500));
      }
    }
    await this.forward(req, res, raw);
  }

  private answer(res: http.ServerResponse, call: ProxiedCall, a: FakeAnswer): void {
    if (call.protocol === "json") {
      res.writeHead(a.status ?? 200, { "content-type": "application/x-amz-json-1.0" });
      res.end(JSON.stringify(a.body ?? {}));
      return;
    }
    res.writeHead(a.status ?? 200, { "content-type": "text/xml" });
    res.end(
      `<${call.operation}Response xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/">` +
        `<${call.operation}Result>${a.body ?? ""}</${call.operation}Result>` +
        `<ResponseMetadata><RequestId>fake-${this.calls.length}</RequestId></ResponseMetadata></${call.operation}Response>`,
    );
  }

  private fail(res: http.ServerResponse, call: ProxiedCall, f: AwsFault): void {
    call.failed = f.code;
    if (call.protocol === "json") {
      res.writeHead(f.status, { "content-type": "application/x-amz-json-1.0", "x-amzn-query-error": `${f.code};Sender` });
      res.end(JSON.stringify({ __type: f.code, message: f.message }));
      return;
    }
    res.writeHead(f.status, { "content-type": "text/xml" });
    res.end(`<ErrorResponse><Error><Type>Sender</Type><Code>${f.code}</Code><Message>${xml(f.message)}</Message></Error><RequestId>fake</RequestId></ErrorResponse>`);
  }

  private forward(req: http.IncomingMessage, res: http.ServerResponse, body: Buffer): Promise<void> {
    const target = new URL(req.url ?? "/", this.upstream);
    return new Promise((resolve) => {
      const up = http.request(target, { method: req.method, headers: { ...req.headers, host: target.host } }, (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
        r.on("end", () => resolve());
      });
      up.on("error", (e) => {
        res.writeHead(502);
        res.end(e.message);
        resolve();
      });
      up.end(body);
    });
  }
}

function describe(req: http.IncomingMessage, raw: Buffer): ProxiedCall {
  const scope = /Credential=[^/]+\/\d+\/[^/]+\/([^/]+)\//.exec(String(req.headers.authorization ?? ""))?.[1] ?? "unknown";
  const target = req.headers["x-amz-target"];
  if (typeof target === "string") {
    let input: Record<string, unknown> = {};
    try {
      input = raw.length ? (JSON.parse(raw.toString("utf8")) as Record<string, unknown>) : {};
    } catch {
      // Not JSON: left empty.
    }
    return { service: scope, operation: target.split(".").pop()!, input, protocol: "json" };
  }
  const form = Object.fromEntries(new URLSearchParams(raw.toString("utf8")));
  return { service: scope, operation: String(form.Action ?? /\/operation\/([^/?]+)/.exec(req.url ?? "")?.[1] ?? "unknown"), input: form, protocol: "query" };
}

export function xml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}
