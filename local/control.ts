import * as fs from "node:fs";
import * as http from "node:http";
import type { QueueDepth } from "./queues";

/** What `GET /status` on a local fleet's control socket answers: all `kiln status` shows. */
export interface LocalStatus {
  stack: string;
  pid: number;
  startedAt: number;
  phase: string;
  paused: boolean;
  pausedAt?: number;
  speed: number;
  queue: QueueDepth & { oldestAgeSeconds?: number };
  dlq: QueueDepth & { oldestAgeSeconds?: number };
  processed: number;
  failed: number;
  rates: { processed5?: number; processed15?: number; failed15?: number };
  scaling: { min: number; max: number; target: number; desired: number };
  workers: { id: string; pid?: number; state: string; startedAt: number }[];
  /** The run so far: the most messages waiting at once, and worker-seconds spent (instance-hours, locally). */
  history: { peakBacklog: number; workerSeconds: number; peakWorkers: number };
}

/** What the fleet lets the control API do. */
export interface LocalControls {
  status(): Promise<LocalStatus>;
  scale(desired: number): { from: number; to: number };
  pause(): { already: boolean; desired: number };
  resume(): { wasPaused: boolean; desired: number };
}

/** A mistake in a control request: answered 400 with its message. */
export class ControlRequestError extends Error {}

/**
 * The local fleet's control API, HTTP on a unix socket that only this user can reach (the state
 * directory is 0700): `GET /status`, `POST /scale {"desired": N}`, `POST /pause`, `POST /resume`.
 * `npm run kiln` is its client; it is small enough to use with `curl --unix-socket`.
 */
export async function serveControl(socket: string, controls: LocalControls): Promise<{ close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    void handle(req, controls).then(
      ([status, body]) => {
        res.writeHead(status, { "content-type": "application/json" });
        res.end(JSON.stringify(body));
      },
      (e: Error) => {
        res.writeHead(500, { "content-type": "application/json" });
        res.end(JSON.stringify({ error: e.message }));
      },
    );
  });
  // A socket file left by a fleet that was killed would make listen fail; its record is already stale.
  fs.rmSync(socket, { force: true });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(socket, () => resolve());
  });
  fs.chmodSync(socket, 0o600);
  return {
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          fs.rmSync(socket, { force: true });
          resolve();
        });
      }),
  };
}

async function handle(req: http.IncomingMessage, c: LocalControls): Promise<[number, unknown]> {
  const route = `${req.method} ${(req.url ?? "/").split("?")[0]}`;
  try {
    switch (route) {
      case "GET /status":
        return [200, await c.status()];
      case "POST /scale": {
        const body = (await readJson(req)) as { desired?: unknown };
        if (typeof body.desired !== "number" || !Number.isInteger(body.desired) || body.desired < 0) {
          throw new ControlRequestError("desired must be a whole number, 0 or more");
        }
        return [200, c.scale(body.desired)];
      }
      case "POST /pause":
        return [200, c.pause()];
      case "POST /resume":
        return [200, c.resume()];
      default:
        return [404, { error: `no ${route}: GET /status, POST /scale, POST /pause, POST /resume` }];
    }
  } catch (e) {
    if (e instanceof ControlRequestError) return [400, { error: e.message }];
    throw e;
  }
}

async function readJson(req: http.IncomingMessage): Promise<unknown> {
  let text = "";
  for await (const chunk of req) text += chunk;
  try {
    return text ? JSON.parse(text) : {};
  } catch {
    throw new ControlRequestError("the body must be JSON");
  }
}

/** One request to a local fleet's control socket; throws with the fleet's own error message. */
export function callControl<T>(socket: string, method: "GET" | "POST", route: string, body?: unknown, timeoutMs = 10_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request(
      { socketPath: socket, method, path: route, headers: payload ? { "content-type": "application/json" } : {}, timeout: timeoutMs },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (d) => (text += d));
        res.on("end", () => {
          let parsed: unknown;
          try {
            parsed = JSON.parse(text);
          } catch {
            return reject(new Error(`the local fleet answered ${res.statusCode} with something not JSON`));
          }
          if (res.statusCode === 200) resolve(parsed as T);
          else reject(new Error((parsed as { error?: string }).error ?? `the local fleet answered ${res.statusCode}`));
        });
      },
    );
    req.on("timeout", () => req.destroy(new Error(`the local fleet did not answer ${method} ${route} within ${timeoutMs / 1000} s`)));
    req.on("error", reject);
    req.end(payload);
  });
}
