import {
  DeleteMessageBatchCommand,
  Message,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageBatchRequestEntry,
  SQSClient,
} from "@aws-sdk/client-sqs";
import { queueDepth } from "../../local/queues";
import { awsCall, isAwsError } from "../aws/call";
import { CallFailed } from "../exit";
import { pause } from "../io";
import { RedriveJournal } from "./journal";

/**
 * SendMessageBatch: "The maximum allowed individual message size and the maximum total payload size
 * (the sum of the individual lengths of all of the batched messages) are both 1 MiB (1,048,576 bytes)."
 * An endpoint with the older 256 KiB limit answers BatchRequestTooLong; each message is then sent alone.
 */
export const BATCH_BYTES = 1_048_576;

export interface LoopOptions {
  sqs: SQSClient;
  dlqUrl: string;
  queueUrl: string;
  journal: RedriveJournal;
  /** Messages a second at most; undefined: as fast as the queues answer. */
  maxRate?: number;
  /** Seconds a message being moved stays hidden in the DLQ; a killed run's messages show again after it. */
  visibility: number;
  signal: AbortSignal;
  progress?: (p: LoopProgress) => void;
}

export interface LoopProgress {
  moved: number;
  /** Deleted without being sent again: an earlier run had sent them. */
  alreadySent: number;
  /** In the DLQ when the loop started. */
  total: number;
  done: boolean;
}

/** A received message as SendMessageBatch takes it: body, message attributes, trace header and FIFO ids intact. */
export function resendEntry(m: Message, id: string): SendMessageBatchRequestEntry {
  const trace = m.Attributes?.AWSTraceHeader;
  return {
    Id: id,
    MessageBody: m.Body ?? "",
    MessageAttributes: m.MessageAttributes && Object.keys(m.MessageAttributes).length ? m.MessageAttributes : undefined,
    MessageSystemAttributes: trace ? { AWSTraceHeader: { DataType: "String", StringValue: trace } } : undefined,
    MessageGroupId: m.Attributes?.MessageGroupId,
    MessageDeduplicationId: m.Attributes?.MessageGroupId ? m.Attributes?.MessageDeduplicationId ?? m.MessageId : undefined,
  };
}

/** What a message counts toward the batch limit: its body and its attributes' names, types and values. */
export function messageBytes(m: Message): number {
  let n = Buffer.byteLength(m.Body ?? "");
  for (const [name, v] of Object.entries(m.MessageAttributes ?? {})) {
    n += Buffer.byteLength(name) + Buffer.byteLength(v.DataType ?? "") + Buffer.byteLength(v.StringValue ?? "") + (v.BinaryValue?.length ?? 0);
  }
  return n;
}

/** Splits messages into batches SendMessageBatch accepts: ten at most, BATCH_BYTES at most. */
export function batches(messages: Message[], limit = BATCH_BYTES): Message[][] {
  const out: Message[][] = [];
  let cur: Message[] = [];
  let bytes = 0;
  for (const m of messages) {
    const b = messageBytes(m);
    if (cur.length && (cur.length === 10 || bytes + b > limit)) {
      out.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(m);
    bytes += b;
  }
  if (cur.length) out.push(cur);
  return out;
}

/**
 * Moves every message of the DLQ back to the queue where StartMessageMoveTask does not exist (the
 * embedded SQS): receive, send the batch to the queue, journal it, delete it from the DLQ. Killed at
 * any point, nothing is lost: a message is deleted only after the queue took it and the journal
 * holds its id, and one received but not sent shows again after `visibility` seconds. A kill
 * between a send and its journal line can leave that batch (ten at most) in the queue twice; one
 * between the journal and the delete costs nothing (the next run deletes without sending).
 */
export async function redriveLoop(o: LoopOptions): Promise<LoopProgress> {
  const start = await awsCall("reading the dead-letter queue's depth", () => queueDepth(o.sqs, o.dlqUrl));
  const p: LoopProgress = { moved: 0, alreadySent: 0, total: start.visible + start.inFlight + start.delayed, done: false };
  const began = Date.now();
  let hiddenSince: number | undefined;
  while (!o.signal.aborted) {
    const out = await awsCall("receiving from the dead-letter queue", () =>
      o.sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: o.dlqUrl,
          MaxNumberOfMessages: 10,
          VisibilityTimeout: o.visibility,
          WaitTimeSeconds: 1,
          MessageSystemAttributeNames: ["All"],
          MessageAttributeNames: ["All"],
        }),
      ),
    );
    const got = out.Messages ?? [];
    if (!got.length) {
      const left = await awsCall("reading the dead-letter queue's depth", () => queueDepth(o.sqs, o.dlqUrl));
      if (left.visible + left.inFlight + left.delayed === 0) {
        p.done = true;
        break;
      }
      // Hidden by an earlier, killed run (or a look with dlq show): they show again within its visibility timeout.
      hiddenSince ??= Date.now();
      if (Date.now() - hiddenSince > (o.visibility + 60) * 1000) {
        throw new CallFailed(`${left.inFlight} message(s) stay hidden in the dead-letter queue for over ${o.visibility + 60} s: another reader holds them; run dlq redrive again later`);
      }
      o.progress?.(p);
      await pause(500, o.signal);
      continue;
    }
    hiddenSince = undefined;
    const again = got.filter((m) => o.journal.has(m.MessageId!));
    const fresh = got.filter((m) => !o.journal.has(m.MessageId!));
    const sent: Message[] = [];
    let refused: string | undefined;
    for (const batch of batches(fresh)) {
      const r = await sendBatch(o, batch);
      sent.push(...r.taken);
      refused ??= r.refused;
    }
    o.journal.record(sent.map((m) => m.MessageId!));
    await deleteBatch(o, [...again, ...sent]);
    p.moved += sent.length;
    p.alreadySent += again.length;
    o.progress?.(p);
    if (refused) throw new CallFailed(`${refused}; they stay in the dead-letter queue, the ${p.moved} moved so far are in the queue`);
    if (o.maxRate) {
      const due = began + ((p.moved + p.alreadySent) / o.maxRate) * 1000;
      if (due > Date.now()) await pause(due - Date.now(), o.signal);
    }
  }
  o.progress?.(p);
  return p;
}

/** Sends a batch to the queue: the messages it took, and why it refused any (those stay in the DLQ). */
async function sendBatch(o: LoopOptions, batch: Message[]): Promise<{ taken: Message[]; refused?: string }> {
  let out;
  try {
    out = await o.sqs.send(new SendMessageBatchCommand({ QueueUrl: o.queueUrl, Entries: batch.map((m, i) => resendEntry(m, String(i))) }));
  } catch (e) {
    if (batch.length > 1 && isAwsError(e, "BatchRequestTooLong", "AWS.SimpleQueueService.BatchRequestTooLong")) {
      const taken: Message[] = [];
      let refused: string | undefined;
      for (const m of batch) {
        const r = await sendBatch(o, [m]);
        taken.push(...r.taken);
        refused ??= r.refused;
      }
      return { taken, refused };
    }
    return awsCall("sending to the queue", () => Promise.reject(e));
  }
  const taken = batch.filter((_, i) => (out.Successful ?? []).some((s) => s.Id === String(i)));
  const f = out.Failed?.[0];
  return { taken, refused: f ? `the queue refused ${out.Failed!.length} message(s) (${f.Code}: ${f.Message})` : undefined };
}

async function deleteBatch(o: LoopOptions, messages: Message[]): Promise<void> {
  for (let i = 0; i < messages.length; i += 10) {
    const chunk = messages.slice(i, i + 10);
    // A failed delete (its receipt handle expired) is harmless: the message shows again, the
    // journal knows it was sent, and the next receive deletes it without sending it again.
    await awsCall("deleting moved messages from the dead-letter queue", () =>
      o.sqs.send(new DeleteMessageBatchCommand({ QueueUrl: o.dlqUrl, Entries: chunk.map((m, j) => ({ Id: String(j), ReceiptHandle: m.ReceiptHandle! })) })),
    );
  }
}
