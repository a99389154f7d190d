import { ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";

/** A server of the test's, reached from inside the namespace at host:port (IMDS at 169.254.169.254:80). */
export interface Inbound {
  name: string;
  host: string;
  port: number;
  /** Where it really listens: 127.0.0.1:to on this machine. */
  to: number;
}

/** A server inside the namespace (the machine's sshd at 127.0.0.1:22), reached by the test at `port(name)`. */
export interface Outbound {
  name: string;
  host: string;
  port: number;
}

/**
 * A network namespace with loopback only, for a booted image (systemd-nspawn
 * --network-namespace-path): no route anywhere, and the test's stand-ins for IMDS and the AWS APIs
 * reachable at the addresses the image expects, through Unix sockets (netns-relay.js). Nothing here
 * binds anything but 127.0.0.1 on this machine.
 */
export class LoopbackNetwork {
  private readonly ports = new Map<string, number>();

  private constructor(
    private readonly dir: string,
    private readonly relay: ChildProcess,
    private readonly servers: net.Server[],
    /** Open connections, closed at stop. */
    private readonly sockets: Set<net.Socket>,
  ) {}

  /** The namespace, for systemd-nspawn --network-namespace-path and nsenter --net. */
  get path(): string {
    return `/proc/${this.relay.pid}/ns/net`;
  }

  /** The port on 127.0.0.1 that reaches an outbound server. */
  port(name: string): number {
    const p = this.ports.get(name);
    if (p === undefined) throw new Error(`no outbound ${name}`);
    return p;
  }

  static async start(dir: string, opts: { addresses?: string[]; inbound?: Inbound[]; outbound?: Outbound[] }): Promise<LoopbackNetwork> {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const sock = (name: string) => path.join(dir, `${name}.sock`);
    const inbound = opts.inbound ?? [];
    const outbound = opts.outbound ?? [];
    const servers: net.Server[] = [];
    const sockets = new Set<net.Socket>();
    const track = (c: net.Socket) => {
      sockets.add(c);
      c.once("close", () => sockets.delete(c));
    };
    // The test's side of each inbound route: a Unix socket to the real server.
    for (const r of inbound) {
      const server = net.createServer((c) => {
        const up = net.connect(r.to, "127.0.0.1");
        track(c);
        track(up);
        pipe(c, up);
      });
      await listen(server, sock(r.name));
      servers.push(server);
    }
    const spec = {
      addresses: opts.addresses ?? [],
      inbound: inbound.map((r) => ({ host: r.host, port: r.port, socket: sock(r.name) })),
      outbound: outbound.map((r) => ({ host: r.host, port: r.port, socket: sock(r.name) })),
    };
    const relay = spawn("unshare", ["--net", "--", process.execPath, path.join(__dirname, "netns-relay.js"), JSON.stringify(spec)], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    const network = new LoopbackNetwork(dir, relay, servers, sockets);
    try {
      await new Promise<void>((resolve, reject) => {
        let err = "";
        relay.stderr!.on("data", (b: Buffer) => (err += b.toString()));
        relay.stdout!.on("data", (b: Buffer) => b.toString().includes("ready") && resolve());
        relay.once("exit", (code) => reject(new Error(`the network namespace's relay exited ${code}: ${err.trim()}`)));
        setTimeout(() => reject(new Error(`the network namespace's relay did not start within 10 s: ${err.trim()}`)), 10_000).unref();
      });
      // The test's side of each outbound route: 127.0.0.1 on this machine to the relay's Unix socket.
      for (const r of outbound) {
        const server = net.createServer((c) => {
          const down = net.connect(sock(r.name));
          track(c);
          track(down);
          pipe(c, down);
        });
        await listen(server, 0, "127.0.0.1");
        servers.push(server);
        network.ports.set(r.name, (server.address() as net.AddressInfo).port);
      }
    } catch (e) {
      await network.stop();
      throw e;
    }
    return network;
  }

  async stop(): Promise<void> {
    if (this.relay.exitCode === null && this.relay.signalCode === null) {
      const exited = new Promise((r) => this.relay.once("exit", r));
      this.relay.kill("SIGTERM");
      await Promise.race([exited, new Promise((r) => setTimeout(r, 3_000))]);
      if (this.relay.exitCode === null && this.relay.signalCode === null) this.relay.kill("SIGKILL");
    }
    for (const s of this.sockets) s.destroy();
    await Promise.all(this.servers.map((s) => new Promise((r) => s.close(r))));
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

function pipe(a: net.Socket, b: net.Socket): void {
  a.on("error", () => b.destroy());
  b.on("error", () => a.destroy());
  a.pipe(b).pipe(a);
}

function listen(server: net.Server, ...args: [string] | [number, string]): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(...(args as [number, string]), () => resolve());
  });
}
