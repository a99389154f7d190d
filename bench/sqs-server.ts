import * as path from "node:path";
import { startEmbeddedSqs } from "../local/embedded-sqs";
import { forkTs, stopChild } from "./children";
import { REGION } from "./messages";

/**
 * The embedded SQS (fauxqs) in a process of its own: the emulator costs about as much CPU per
 * request as the consumer under test, and sharing one event loop with it would measure the two
 * together. On two cores, each gets one.
 */
export interface SqsServerProcess {
  endpoint: string;
  pid: number;
  stop(): Promise<void>;
}

export async function startSqsServerProcess(): Promise<SqsServerProcess> {
  const child = forkTs(path.join(__dirname, "sqs-server.ts"));
  const endpoint = await new Promise<string>((resolve, reject) => {
    child.once("message", (m) => resolve((m as { endpoint: string }).endpoint));
    child.once("exit", (code) => reject(new Error(`the SQS server process exited (${code}) before it listened`)));
  });
  return { endpoint, pid: child.pid!, stop: () => stopChild(child) };
}

async function serve(): Promise<void> {
  const sqs = await startEmbeddedSqs({ region: REGION });
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    // Open long polls can hold close() up; the process is going anyway.
    setTimeout(() => process.exit(0), 2_000).unref();
    void sqs.stop().finally(() => process.exit(0));
  };
  // `disconnect`: the bench died without stopping us; an orphaned emulator must not linger.
  process.once("disconnect", stop);
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
  process.send!({ endpoint: sqs.endpoint });
}

if (require.main === module) {
  serve().catch((e: Error) => {
    process.stderr.write(`sqs-server: ${e.stack ?? e.message}\n`);
    process.exit(1);
  });
}
