import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";

/**
 * The plugin's side of the fake Session Manager (fake-session-manager.ts): the data channel, which
 * stands for ssmmessages.<region>.amazonaws.com, and the fake session-manager-plugin put first on PATH
 * to use it (fake-session-manager-plugin.ts).
 */
export const FAKE_PLUGIN_VERSION = "1.2.707.0";
/** Where the fake plugin finds the data channel (what DNS for ssmmessages.<region>.amazonaws.com is to the real one). */
export const DATA_CHANNEL_ENV = "KILN_FAKE_SSMMESSAGES";

export interface FakeSession {
  id: string;
  token: string;
  target: string;
  document: string;
  parameters: Record<string, string[]>;
  reason?: string;
  status: "Connected" | "Terminated";
  /** The plugin that opened the data channel: its pid, the endpoint it was given, whether the token was on its command line. */
  plugin?: { pid: number; endpoint: string; tokenOnCommandLine: boolean };
  /** Connections carried to the instance's port. */
  connections: number;
  control?: net.Socket;
  data: Set<net.Socket>;
}

/**
 * Line-framed: the plugin opens a session with `OPEN <session> <token> <pid> <endpoint>` (answered
 * `OK <target> <portNumber> <localPortNumber>`, the session's properties, as the real handshake gives
 * them, or `ERR <why>`), then carries each local connection on its own `DATA <session>` socket to the
 * port `routes` gives the session's target. The token opens a session once.
 */
export class FakeDataChannel {
  private constructor(
    private readonly server: net.Server,
    private readonly sessions: Map<string, FakeSession>,
    private readonly routes: Map<string, number>,
  ) {}

  static async start(sessions: Map<string, FakeSession>, routes: Map<string, number>): Promise<FakeDataChannel> {
    let channel!: FakeDataChannel;
    const server = net.createServer((socket) => channel.accept(socket));
    channel = new FakeDataChannel(server, sessions, routes);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return channel;
  }

  get address(): string {
    return `127.0.0.1:${(this.server.address() as net.AddressInfo).port}`;
  }

  /** Ends a session as the service does: its channels close, and the plugin carrying it exits. */
  static close(session: FakeSession): void {
    session.status = "Terminated";
    session.control?.end();
    for (const d of session.data) d.destroy();
  }

  stop(): Promise<void> {
    return new Promise((r) => this.server.close(() => r()));
  }

  private accept(socket: net.Socket): void {
    socket.on("error", () => undefined);
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const nl = head.indexOf(10);
      if (nl < 0) return;
      socket.removeListener("data", onData);
      const [verb, id, ...rest] = head.subarray(0, nl).toString("utf8").split(" ");
      const session = this.sessions.get(id);
      const refuse = (why: string): void => void socket.end(`ERR ${why}\n`);
      if (!session || session.status !== "Connected") return refuse(`session ${id} is not open`);
      if (verb === "OPEN") return this.open(socket, session, rest, refuse);
      if (verb === "DATA") return this.carry(socket, session, head.subarray(nl + 1), refuse);
      refuse(`unknown verb ${verb}`);
    };
    socket.on("data", onData);
  }

  private open(socket: net.Socket, session: FakeSession, [token, pid, endpoint]: string[], refuse: (why: string) => void): void {
    if (session.plugin) return refuse("the session's token was used already");
    if (token !== session.token) return refuse("the token does not match the session");
    session.plugin = { pid: Number(pid), endpoint, tokenOnCommandLine: commandLine(Number(pid)).includes(session.token) };
    session.control = socket;
    socket.on("close", () => {
      session.control = undefined;
      for (const d of session.data) d.destroy();
    });
    socket.write(`OK ${session.target} ${session.parameters.portNumber[0]} ${session.parameters.localPortNumber?.[0] ?? "0"}\n`);
  }

  private carry(socket: net.Socket, session: FakeSession, first: Buffer, refuse: (why: string) => void): void {
    const port = this.routes.get(session.target);
    if (!session.control || !port) return refuse("the session has no plugin, or its target no route");
    const upstream = net.connect({ host: "127.0.0.1", port });
    session.connections++;
    session.data.add(socket);
    upstream.on("error", () => socket.destroy());
    socket.on("close", () => {
      session.data.delete(socket);
      upstream.destroy();
    });
    upstream.on("close", () => socket.destroy());
    if (first.length) upstream.write(first);
    socket.pipe(upstream);
    upstream.pipe(socket);
  }
}

function commandLine(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ");
  } catch {
    return "";
  }
}

/**
 * Puts the fake session-manager-plugin first on PATH (a wrapper that runs
 * fake-session-manager-plugin.ts with this Node), pointed at the data channel at `address`. `restore`
 * puts PATH and the environment back.
 */
export function installFakePlugin(channel: { dataChannel: string }, opts: { version?: string } = {}): { dir: string; restore(): void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kiln-fake-plugin-"));
  const script = path.join(__dirname, "fake-session-manager-plugin.ts");
  fs.writeFileSync(
    path.join(dir, "session-manager-plugin"),
    `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} --require ${JSON.stringify(require.resolve("tsx/cjs"))} ${JSON.stringify(script)} "$@"\n`,
    { mode: 0o755 },
  );
  const saved = { PATH: process.env.PATH, channel: process.env[DATA_CHANNEL_ENV], version: process.env.KILN_FAKE_PLUGIN_VERSION };
  process.env.PATH = `${dir}${path.delimiter}${process.env.PATH ?? ""}`;
  process.env[DATA_CHANNEL_ENV] = channel.dataChannel;
  process.env.KILN_FAKE_PLUGIN_VERSION = opts.version ?? FAKE_PLUGIN_VERSION;
  return {
    dir,
    restore() {
      const put = (k: string, v: string | undefined) => (v === undefined ? delete process.env[k] : (process.env[k] = v));
      put("PATH", saved.PATH);
      put(DATA_CHANNEL_ENV, saved.channel);
      put("KILN_FAKE_PLUGIN_VERSION", saved.version);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
