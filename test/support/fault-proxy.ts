import * as http from "node:http";
import * as net from "node:net";

/**
 * A proxy on 127.0.0.1 in front of moto that fails the AWS query-protocol calls a test names (EC2,
 * Auto Scaling, CloudWatch, ...: `Action=...` in a form body) the way AWS would, and passes every
 * other request through untouched. For the paths whose failure moto cannot be asked to produce.
 */
export interface FaultProxy {
  endpoint: string;
  /** From now on, every call of `action` answers `status` with this AWS error code and message. */
  fail(action: string, error: { status: number; code: string; message: string }): void;
  /** The actions that were called, in order, failed or not. */
  calls: string[];
  stop(): Promise<void>;
}

export async function startFaultProxy(target: string): Promise<FaultProxy> {
  const failures = new Map<string, { status: number; code: string; message: string }>();
  const calls: string[] = [];
  const upstream = new URL(target);
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      const action = new URLSearchParams(body.toString("utf8")).get("Action") ?? "";
      calls.push(action);
      const failure = failures.get(action);
      if (failure) {
        res.writeHead(failure.status, { "content-type": "text/xml" });
        res.end(
          `<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>${failure.code}</Code>` +
            `<Message>${failure.message}</Message></Error></Errors><RequestID>fault-proxy</RequestID></Response>`,
        );
        return;
      }
      const forward = http.request(
        { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: { ...req.headers, host: upstream.host } },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      forward.on("error", (e) => {
        res.writeHead(502);
        res.end(String(e));
      });
      forward.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    fail: (action, error) => void failures.set(action, error),
    calls,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
