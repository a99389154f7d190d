import { randomBytes } from "node:crypto";
import * as http from "node:http";
import { AddressInfo } from "node:net";

export interface FakeImdsOptions {
  instanceId?: string;
  /** autoscaling/target-lifecycle-state: "InService", then "Terminated" when the group scales in. */
  targetLifecycleState?: string;
}

/**
 * An IMDSv2 stand-in on 127.0.0.1: PUT /latest/api/token for a session token, then GET
 * /latest/meta-data/<path> with it; a GET without a valid token is refused (401), as on an instance
 * that requires IMDSv2. Point code at it with AWS_EC2_METADATA_SERVICE_ENDPOINT=`endpoint`.
 * The test that starts it stops it.
 */
export class FakeImds {
  /** Metadata paths below /latest/meta-data/, editable while running. */
  readonly metadata = new Map<string, string>();
  /** Requests answered, as "METHOD path status". */
  readonly requests: string[] = [];
  private readonly tokens = new Set<string>();
  private failing = 0;

  private constructor(private readonly server: http.Server) {}

  static async start(opts: FakeImdsOptions = {}): Promise<FakeImds> {
    let imds: FakeImds | undefined;
    const server = http.createServer((req, res) => imds!.answer(req, res));
    imds = new FakeImds(server);
    imds.metadata.set("instance-id", opts.instanceId ?? "i-0123456789abcdef0");
    imds.metadata.set("autoscaling/target-lifecycle-state", opts.targetLifecycleState ?? "InService");
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", resolve);
    });
    return imds;
  }

  get endpoint(): string {
    const { port } = this.server.address() as AddressInfo;
    return `http://127.0.0.1:${port}`;
  }

  /** The next `n` requests of any kind answer 500, like an IMDS that is briefly unavailable. */
  failNext(n = 1): void {
    this.failing += n;
  }

  async stop(): Promise<void> {
    // fetch keeps connections alive; close them or close() waits for their idle timeout.
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private answer(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? "/", "http://imds");
    const reply = (status: number, body = "") => {
      this.requests.push(`${req.method} ${url.pathname} ${status}`);
      res.writeHead(status, { "Content-Type": "text/plain" }).end(body);
    };
    req.resume();
    if (this.failing > 0) {
      this.failing--;
      return reply(500, "Internal Server Error");
    }
    if (url.pathname === "/latest/api/token") {
      const ttl = Number(req.headers["x-aws-ec2-metadata-token-ttl-seconds"]);
      if (req.method !== "PUT") return reply(405);
      if (!Number.isInteger(ttl) || ttl < 1 || ttl > 21_600) return reply(400, "Missing or invalid TTL");
      const token = randomBytes(24).toString("base64");
      this.tokens.add(token);
      return reply(200, token);
    }
    const prefix = "/latest/meta-data/";
    if (req.method !== "GET" || !url.pathname.startsWith(prefix)) return reply(404, "Not Found");
    if (!this.tokens.has(String(req.headers["x-aws-ec2-metadata-token"] ?? ""))) return reply(401, "Unauthorized");
    const value = this.metadata.get(url.pathname.slice(prefix.length));
    return value === undefined ? reply(404, "Not Found") : reply(200, value);
  }
}
