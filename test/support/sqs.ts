import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  Message,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SQSClient,
} from "@aws-sdk/client-sqs";
import { EmbeddedSqs, startEmbeddedSqs } from "../../local/embedded-sqs";

export const REGION = "ap-northeast-1";
export const CREDENTIALS = { accessKeyId: "test", secretAccessKey: "test" };

/** A real SQS emulator on 127.0.0.1 for a test suite, with helpers to fill and inspect queues. */
export class TestSqs {
  private constructor(
    readonly server: EmbeddedSqs,
    readonly client: SQSClient,
  ) {}

  static async start(): Promise<TestSqs> {
    const server = await startEmbeddedSqs({ region: REGION });
    return new TestSqs(server, new SQSClient({ region: REGION, endpoint: server.endpoint, credentials: CREDENTIALS }));
  }

  get endpoint(): string {
    return this.server.endpoint;
  }

  /** A fresh main queue whose redrive sends a message to a fresh DLQ after `maxReceiveCount` receives. */
  async queuePair(name: string, opts: { maxReceiveCount?: number; visibilityTimeout?: number } = {}) {
    const dlq = await this.client.send(new CreateQueueCommand({ QueueName: `${name}-dlq` }));
    const dlqArn = (await this.attributes(dlq.QueueUrl!, ["QueueArn"])).QueueArn;
    const main = await this.client.send(
      new CreateQueueCommand({
        QueueName: name,
        Attributes: {
          VisibilityTimeout: String(opts.visibilityTimeout ?? 30),
          RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: opts.maxReceiveCount ?? 3 }),
        },
      }),
    );
    return { url: main.QueueUrl!, dlqUrl: dlq.QueueUrl! };
  }

  async send(queueUrl: string, bodies: string[]): Promise<void> {
    for (let i = 0; i < bodies.length; i += 10) {
      const chunk = bodies.slice(i, i + 10);
      const out = await this.client.send(
        new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries: chunk.map((b, j) => ({ Id: String(j), MessageBody: b })) }),
      );
      if (out.Failed?.length) throw new Error(`send failed: ${JSON.stringify(out.Failed)}`);
    }
  }

  async attributes(queueUrl: string, names: string[]): Promise<Record<string, string>> {
    const out = await this.client.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: names as never }));
    return out.Attributes ?? {};
  }

  /** Visible, in flight and delayed messages. */
  async depth(queueUrl: string): Promise<{ visible: number; inFlight: number; delayed: number }> {
    const a = await this.attributes(queueUrl, [
      "ApproximateNumberOfMessages",
      "ApproximateNumberOfMessagesNotVisible",
      "ApproximateNumberOfMessagesDelayed",
    ]);
    return {
      visible: Number(a.ApproximateNumberOfMessages),
      inFlight: Number(a.ApproximateNumberOfMessagesNotVisible),
      delayed: Number(a.ApproximateNumberOfMessagesDelayed),
    };
  }

  async receiveAll(queueUrl: string): Promise<Message[]> {
    const all: Message[] = [];
    for (;;) {
      const out = await this.client.send(
        new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0, MessageSystemAttributeNames: ["All"] }),
      );
      if (!out.Messages?.length) return all;
      all.push(...out.Messages);
    }
  }

  async stop(): Promise<void> {
    this.client.destroy();
    await this.server.stop();
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `check` until it holds or `ms` pass; returns whether it held. */
export async function eventually(check: () => Promise<boolean> | boolean, ms = 10_000, every = 50): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return true;
    await sleep(every);
  }
  return check();
}
