import * as http from "node:http";
import {
  CreateQueueCommand,
  DeleteQueueCommand,
  GetQueueAttributesCommand,
  Message,
  SendMessageBatchCommand,
  SQSClient,
} from "@aws-sdk/client-sqs";
import { workerSqsClient } from "../worker/sqs-client";

export const REGION = "ap-northeast-1";
export const CREDENTIALS = { accessKeyId: "bench", secretAccessKey: "bench" };
/** Longer than any run, so no message is ever delivered twice and every contender sees each once. */
export const VISIBILITY_TIMEOUT_S = 300;
/** Upper bound of the sleeping workload's uniform draw. */
export const MAX_SLEEP_MS = 100;
const BODY_BYTES = 256;
const SEED = 20_240_601;

/**
 * One client configuration for every contender: the worker's own (worker/sqs-client.ts), so that
 * no contender gains or loses by how its SDK client is set up. The socket cap is raised from the
 * SDK's 50 so that no contender (the 100-loop bare ceiling above all) is throttled by the HTTP
 * agent instead of by its own design.
 */
export function sqsClient(endpoint: string): SQSClient {
  return workerSqsClient({
    region: REGION,
    endpoint,
    credentials: CREDENTIALS,
    requestHandler: { httpAgent: new http.Agent({ keepAlive: true, maxSockets: 256 }) },
  });
}

/** A uniform draw in [0, 1) that depends only on the message index (mulberry32, one step). */
function unitRandom(i: number): number {
  let t = (SEED + Math.imul(i, 0x6d2b79f5)) | 0;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
}

/**
 * Message i's body: its index, how long the sleeping workload takes on it, and padding. The sleep is
 * in the body so every contender sleeps exactly the same sequence, not just the same distribution.
 */
export function messageBody(i: number): string {
  const head = `${i} ${(unitRandom(i) * MAX_SLEEP_MS).toFixed(3)} `;
  return head + "x".repeat(Math.max(0, BODY_BYTES - head.length));
}

export function indexOf(body: string): number {
  return Number(body.slice(0, body.indexOf(" ")));
}

export function sleepMsOf(body: string): number {
  const a = body.indexOf(" ") + 1;
  return Number(body.slice(a, body.indexOf(" ", a)));
}

export type Workload = "noop" | "sleep";

/** What each message costs the handler; identical code for every contender. */
export function workloadHandler(workload: Workload): (message: Message) => Promise<void> {
  if (workload === "noop") return async () => undefined;
  return (message) => new Promise<void>((resolve) => setTimeout(resolve, sleepMsOf(message.Body ?? "")));
}

/** Mean sleep of messages [0, n): the handler time an ideal consumer could not go below. */
export function meanSleepMs(n: number): number {
  let sum = 0;
  for (let i = 0; i < n; i++) sum += sleepMsOf(messageBody(i));
  return sum / n;
}

let queueCounter = 0;

/** A fresh queue holding messages [0, n), ready before any timing starts. */
export async function filledQueue(sqs: SQSClient, label: string, n: number, from = 0): Promise<string> {
  const name = `bench-${label}-${process.pid}-${++queueCounter}`;
  const out = await sqs.send(
    new CreateQueueCommand({ QueueName: name, Attributes: { VisibilityTimeout: String(VISIBILITY_TIMEOUT_S) } }),
  );
  const url = out.QueueUrl!;
  let next = from;
  const end = from + n;
  // A few batches in flight at once: filling 100k messages one request at a time takes minutes.
  const sender = async () => {
    while (next < end) {
      const first = next;
      next = Math.min(end, next + 10);
      const entries = [];
      for (let i = first; i < Math.min(end, first + 10); i++) entries.push({ Id: String(i - first), MessageBody: messageBody(i) });
      const sent = await sqs.send(new SendMessageBatchCommand({ QueueUrl: url, Entries: entries }));
      if (sent.Failed?.length) throw new Error(`filling ${name}: ${JSON.stringify(sent.Failed[0])}`);
    }
  };
  await Promise.all(Array.from({ length: 16 }, sender));
  return url;
}

/** Visible, received-and-not-deleted, and delayed messages. */
export async function depth(sqs: SQSClient, queueUrl: string): Promise<{ visible: number; inFlight: number; delayed: number }> {
  const out = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: queueUrl,
      AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"],
    }),
  );
  const a = out.Attributes ?? {};
  return {
    visible: Number(a.ApproximateNumberOfMessages ?? 0),
    inFlight: Number(a.ApproximateNumberOfMessagesNotVisible ?? 0),
    delayed: Number(a.ApproximateNumberOfMessagesDelayed ?? 0),
  };
}

/** Messages not yet deleted: visible plus received-and-not-deleted. */
export async function remaining(sqs: SQSClient, queueUrl: string): Promise<number> {
  const d = await depth(sqs, queueUrl);
  return d.visible + d.inFlight + d.delayed;
}

export async function deleteQueue(sqs: SQSClient, queueUrl: string): Promise<void> {
  await sqs.send(new DeleteQueueCommand({ QueueUrl: queueUrl }));
}
