import { ChildProcess, spawn, spawnSync } from "node:child_process";
import { freeLocalPort } from "../../worker/free-port";

/**
 * moto, the AWS emulator, as a server on 127.0.0.1 for a test suite: EC2, SSM (SecureString with
 * KMS), KMS, IAM, Auto Scaling, CloudWatch, Logs, SQS and SNS behind one endpoint. The SDK reaches it
 * with `endpoint` and dummy credentials; every suite gets its own server (or `reset()`s between
 * tests), so no state leaks from one suite into another.
 */
export const MOTO_REGION = "ap-northeast-1";
export const MOTO_CREDENTIALS = { accessKeyId: "testing", secretAccessKey: "testing" };

export interface Moto {
  endpoint: string;
  port: number;
  /** Client options for any SDK v3 client: `new SSMClient(moto.client())`. */
  client(region?: string): { endpoint: string; region: string; credentials: typeof MOTO_CREDENTIALS };
  /** Forgets every resource (moto's own reset API), for a clean slate between tests. */
  reset(): Promise<void>;
  stop(): Promise<void>;
}

let interpreter: string | undefined;

/** The first of $KILN_PYTHON, python3, python3.11 that can import moto; a clear error if none can. */
export function motoPython(): string {
  if (interpreter) return interpreter;
  const candidates = [process.env.KILN_PYTHON, "python3", "python3.11"].filter((c): c is string => Boolean(c));
  for (const c of candidates) {
    const probe = spawnSync(c, ["-c", "import moto.server"], { stdio: "ignore" });
    if (probe.status === 0) return (interpreter = c);
  }
  throw new Error(
    `no Python interpreter here can import moto (tried ${candidates.join(", ")}): install it with ` +
      `\`python3 -m pip install 'moto[server]'\` (.ci/run does), or point KILN_PYTHON at one that has it`,
  );
}

async function ready(endpoint: string, child: ChildProcess, output: () => string, deadlineMs: number): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (Date.now() < end) {
    if (child.exitCode !== null) throw new Error(`moto exited with ${child.exitCode} before it was ready:\n${output()}`);
    try {
      const res = await fetch(`${endpoint}/moto-api/data.json`, { signal: AbortSignal.timeout(1_000) });
      if (res.ok) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`moto did not answer on ${endpoint} within ${deadlineMs / 1000} s:\n${output()}`);
}

/** Starts a moto server on a free 127.0.0.1 port and waits until it answers. */
export async function startMoto(opts: { deadlineMs?: number } = {}): Promise<Moto> {
  const python = motoPython();
  let lastError: unknown;
  // The port is free when picked and taken by moto a moment later; another process may win it.
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freeLocalPort();
    const endpoint = `http://127.0.0.1:${port}`;
    const child = spawn(python, ["-m", "moto.server", "-H", "127.0.0.1", "-p", String(port)], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, PYTHONUNBUFFERED: "1" },
    });
    let out = "";
    const keep = (b: Buffer) => (out = (out + b.toString()).slice(-4000));
    child.stdout!.on("data", keep);
    child.stderr!.on("data", keep);
    try {
      await ready(endpoint, child, () => out, opts.deadlineMs ?? 30_000);
    } catch (e) {
      lastError = e;
      child.kill("SIGKILL");
      continue;
    }
    const exited = new Promise<void>((resolve) => (child.exitCode !== null ? resolve() : child.once("exit", () => resolve())));
    return {
      endpoint,
      port,
      client: (region = MOTO_REGION) => ({ endpoint, region, credentials: MOTO_CREDENTIALS }),
      async reset() {
        const res = await fetch(`${endpoint}/moto-api/reset`, { method: "POST" });
        if (!res.ok) throw new Error(`moto reset answered ${res.status}`);
      },
      async stop() {
        if (child.exitCode === null) child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
        await exited;
        clearTimeout(timer);
      },
    };
  }
  throw lastError;
}
