import { ChangeMessageVisibilityBatchCommand, Message, ReceiveMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import { awsCall } from "../aws/call";

/** Seconds each looked-at message stays hidden: long enough to page through, short if the look is killed. */
export const PEEK_VISIBILITY = 30;
/** Empty short-poll receives in a row before the queue counts as read (SQS samples its servers). */
const EMPTY_RECEIVES = 3;

/**
 * Up to `max` messages of a queue, left in it: each is received (hidden meanwhile, so paging sees
 * each once) and made visible again at the end. A look that is killed leaves them hidden for
 * PEEK_VISIBILITY seconds at most; nothing is ever deleted. Each receive adds one to a message's
 * ApproximateReceiveCount.
 */
export async function peekMessages(sqs: SQSClient, queueUrl: string, max: number, signal?: AbortSignal): Promise<{ messages: Message[]; unhidden: boolean }> {
  const messages = new Map<string, Message>();
  let empty = 0;
  let unhidden = true;
  try {
    while (messages.size < max && empty < EMPTY_RECEIVES && !signal?.aborted) {
      const out = await awsCall("reading the dead-letter queue", () =>
        sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: queueUrl,
            MaxNumberOfMessages: Math.min(10, max - messages.size),
            VisibilityTimeout: PEEK_VISIBILITY,
            WaitTimeSeconds: empty > 0 ? 1 : 0,
            MessageSystemAttributeNames: ["All"],
            MessageAttributeNames: ["All"],
          }),
        ),
      );
      const got = out.Messages ?? [];
      empty = got.length ? 0 : empty + 1;
      for (const m of got) if (m.MessageId && !messages.has(m.MessageId)) messages.set(m.MessageId, m);
    }
  } finally {
    unhidden = await unhide(sqs, queueUrl, [...messages.values()]);
  }
  return { messages: [...messages.values()], unhidden };
}

/** Makes received messages visible again at once; false when some stay hidden until their timeout. */
async function unhide(sqs: SQSClient, queueUrl: string, messages: Message[]): Promise<boolean> {
  let all = true;
  for (let i = 0; i < messages.length; i += 10) {
    const chunk = messages.slice(i, i + 10);
    try {
      const out = await sqs.send(
        new ChangeMessageVisibilityBatchCommand({
          QueueUrl: queueUrl,
          Entries: chunk.map((m, j) => ({ Id: String(j), ReceiptHandle: m.ReceiptHandle!, VisibilityTimeout: 0 })),
        }),
      );
      if (out.Failed?.length) all = false;
    } catch {
      all = false;
    }
  }
  return all;
}
