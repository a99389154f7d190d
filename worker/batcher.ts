import { ChangeMessageVisibilityBatchCommand, DeleteMessageBatchCommand, type SQSClient } from "@aws-sdk/client-sqs";

/**
 * Collects single SQS operations (delete, change visibility) into batch calls of up to ten, sent as
 * soon as ten are waiting or `lingerMs` after the first: one request instead of ten at high rates,
 * and no added latency worth the name at low ones.
 */
export interface BatchResult {
  /** Ids of the entries that failed, with SQS's reason. */
  failed: { id: string; message: string }[];
}

export type SendBatch<T> = (entries: { id: string; item: T }[]) => Promise<BatchResult>;

interface Pending<T> {
  item: T;
  resolve: () => void;
  reject: (e: Error) => void;
}

export class Batcher<T> {
  private waiting: Pending<T>[] = [];
  private timer?: NodeJS.Timeout;
  private inflight = new Set<Promise<void>>();

  constructor(
    private send: SendBatch<T>,
    private lingerMs = 5,
    private size = 10,
  ) {}

  /** Resolves when SQS has acknowledged this entry; rejects with SQS's reason if it was refused. */
  add(item: T): Promise<void> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ item, resolve, reject });
      if (this.waiting.length >= this.size) this.sendWaiting();
      else this.timer ??= setTimeout(() => this.sendWaiting(), this.lingerMs);
    });
  }

  /** Sends everything waiting and waits for every batch under way. */
  async flush(): Promise<void> {
    while (this.waiting.length > 0) this.sendWaiting();
    await Promise.all([...this.inflight]);
  }

  private sendWaiting(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.waiting.splice(0, this.size);
    if (this.waiting.length > 0) this.timer = setTimeout(() => this.sendWaiting(), this.lingerMs);
    if (batch.length === 0) return;
    const call = this.send(batch.map((p, i) => ({ id: String(i), item: p.item })))
      .then(
        ({ failed }) => {
          const reasons = new Map(failed.map((f) => [f.id, f.message]));
          batch.forEach((p, i) => {
            const reason = reasons.get(String(i));
            if (reason === undefined) p.resolve();
            else p.reject(new Error(reason));
          });
        },
        (e: Error) => batch.forEach((p) => p.reject(e)),
      )
      .finally(() => this.inflight.delete(call));
    this.inflight.add(call);
  }
}

/** SQS's answer to a batch call, as a Batcher reads it: the entries it refused, with why. */
function refused(out: { Failed?: { Id?: string; Message?: string; Code?: string }[] }): BatchResult {
  return { failed: (out.Failed ?? []).map((f) => ({ id: f.Id!, message: f.Message ?? f.Code ?? "refused" })) };
}

/** DeleteMessageBatch for a Batcher of receipt handles. */
export function sqsDeletes(sqs: SQSClient, queueUrl: string): SendBatch<string> {
  return async (entries) =>
    refused(await sqs.send(new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: entries.map((e) => ({ Id: e.id, ReceiptHandle: e.item })) })));
}

/** ChangeMessageVisibilityBatch for a Batcher of receipt handles and the visibility each gets. */
export function sqsVisibilityChanges(sqs: SQSClient, queueUrl: string): SendBatch<{ handle: string; seconds: number }> {
  return async (entries) =>
    refused(
      await sqs.send(
        new ChangeMessageVisibilityBatchCommand({
          QueueUrl: queueUrl,
          Entries: entries.map((e) => ({ Id: e.id, ReceiptHandle: e.item.handle, VisibilityTimeout: e.item.seconds })),
        }),
      ),
    );
}
