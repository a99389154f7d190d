import * as http from "node:http";
import * as net from "node:net";

/**
 * A proxy on 127.0.0.1 in front of the embedded SQS that delays every request, as a real network
 * does, and counts requests by SQS operation. Like SQS itself, it does not cancel a request its
 * client gave up on: a ReceiveMessage still takes messages after the worker stopped listening.
 */
export interface LatencyProxy {
  endpoint: string;
  /** Requests by operation (ReceiveMessage, DeleteMessageBatch, ...). */
  counts: Record<string, number>;
  stop(): Promise<void>;
}

export async function startLatencyProxy(target: string, delayMs: number): Promise<LatencyProxy> {
  const counts: Record<string, number> = {};
  const upstream = new URL(target);
  const server = http.createServer((req, res) => {
    const operation = String(req.headers["x-amz-target"] ?? "").replace(/^AmazonSQS\./, "") || "unknown";
    counts[operation] = (counts[operation] ?? 0) + 1;
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      setTimeout(() => {
        const forward = http.request(
          { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: { ...req.headers, host: upstream.host } },
          (answer) => {
            const body: Buffer[] = [];
            answer.on("data", (c: Buffer) => body.push(c));
            answer.on("end", () => {
              if (res.destroyed) return;
              res.writeHead(answer.statusCode ?? 502, answer.headers);
              res.end(Buffer.concat(body));
            });
          },
        );
        forward.on("error", (e) => {
          if (res.destroyed) return;
          res.writeHead(502);
          res.end(String(e));
        });
        forward.end(Buffer.concat(chunks));
      }, delayMs);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    counts,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
