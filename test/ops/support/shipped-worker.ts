import { spawn } from "node:child_process";
import * as path from "node:path";
import * as readline from "node:readline";
import { DEMO_HANDLER, ROOT } from "../../../local/plan";
import type { DeployedStack } from "./deployed-stack";

/**
 * The real worker (its sources) consuming the stack's queue in moto, its stdout shipped line by
 * line to the stack's log group as the CloudWatch agent ships the journal: one stream, named after
 * the instance. With metrics on it publishes Kiln/Worker to moto.
 */
export function startShippedWorker(stack: DeployedStack, o: { instance: string; logLevel: string; metrics?: boolean }) {
  const child = spawn(process.execPath, ["--require", require.resolve("tsx/cjs"), path.join(ROOT, "worker", "cli.ts"), "run"], {
    env: {
      PATH: process.env.PATH,
      SQS_QUEUE_URL: stack.queueUrl,
      AWS_REGION: "ap-northeast-1",
      AWS_ENDPOINT_URL: stack.moto.endpoint,
      AWS_ACCESS_KEY_ID: "testing",
      AWS_SECRET_ACCESS_KEY: "testing",
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
      WORKER_HANDLER: DEMO_HANDLER,
      DEMO_AVG_MS: "10",
      WORKER_RETRY_DELAY: "0",
      SQS_WAIT_TIME: "1",
      LOG_LEVEL: o.logLevel,
      KILN_STACK: "prod",
      KILN_METRICS: o.metrics ? "on" : "off",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines: Record<string, unknown>[] = [];
  let shipping = Promise.resolve();
  readline.createInterface({ input: child.stdout! }).on("line", (line) => {
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return;
    }
    lines.push(parsed);
    shipping = shipping.then(() => stack.putLogLines(o.instance, [parsed]));
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return {
    lines,
    /** Drains it (SIGTERM: metrics are flushed) and waits until its last line is shipped. */
    async stop(): Promise<number | null> {
      if (child.exitCode === null) child.kill("SIGTERM");
      const code = await exited;
      await shipping;
      return code;
    },
  };
}
