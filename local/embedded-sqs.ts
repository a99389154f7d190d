import type { Server } from "node:http";

/**
 * An SQS emulator (fauxqs) in this process, bound to 127.0.0.1 on a free port. Its queue URLs
 * name a host that does not resolve, so clients must always be given `endpoint`.
 */
export interface EmbeddedSqs {
  endpoint: string;
  stop(): Promise<void>;
}

interface FauxqsApp {
  listen(o: { host: string; port: number }): Promise<string>;
  close(): Promise<void>;
  server: Server;
}

/** `port` 0 or undefined: a free one. */
export async function startEmbeddedSqs(opts: { region?: string; port?: number } = {}): Promise<EmbeddedSqs> {
  // fauxqs ships ESM only; a dynamic import keeps this CommonJS codebase able to load it.
  const { buildApp } = (await import("fauxqs")) as unknown as { buildApp(o: object): FauxqsApp };
  const app = buildApp({ logger: false, defaultRegion: opts.region ?? "us-east-1" });
  await app.listen({ host: "127.0.0.1", port: opts.port ?? 0 });
  const address = app.server.address();
  if (!address || typeof address === "string") throw new Error("the embedded SQS did not bind a TCP port");
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    stop: () => app.close(),
  };
}
