import { randomUUID } from "node:crypto";
import {
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SQSClient,
} from "@aws-sdk/client-sqs";
import { AwsFault, AwsProxy } from "./aws-proxy";

interface Task {
  handle: string;
  source: string;
  destination: string;
  rate?: number;
  status: "RUNNING" | "COMPLETED" | "CANCELLING" | "CANCELLED" | "FAILED";
  moved: number;
  toMove: number;
  started: number;
  failure?: string;
}

/**
 * SQS message move tasks, which moto lacks, served by the proxy and carried out on moto's own
 * queues: StartMessageMoveTask really moves the messages (bodies and attributes) from the DLQ to
 * the destination, at MaxNumberOfMessagesPerSecond if given; ListMessageMoveTasks reports progress;
 * CancelMessageMoveTask stops it. `hold()` keeps a task RUNNING until `release()`, so a test can see
 * one in progress.
 */
export class FakeMessageMoveTasks {
  readonly tasks: Task[] = [];
  private held = false;
  private wake?: () => void;

  constructor(
    proxy: AwsProxy,
    private readonly sqs: SQSClient,
  ) {
    proxy.serve("sqs", "StartMessageMoveTask", (c) => this.start(c.input as { SourceArn?: string; DestinationArn?: string; MaxNumberOfMessagesPerSecond?: number }));
    proxy.serve("sqs", "ListMessageMoveTasks", (c) => {
      const { SourceArn, MaxResults } = c.input as { SourceArn?: string; MaxResults?: number };
      const results = this.tasks
        .filter((t) => t.source === SourceArn)
        .reverse()
        .slice(0, MaxResults ?? 1)
        .map((t) => ({
          TaskHandle: t.status === "RUNNING" ? t.handle : undefined,
          Status: t.status,
          SourceArn: t.source,
          DestinationArn: t.destination,
          MaxNumberOfMessagesPerSecond: t.rate,
          ApproximateNumberOfMessagesMoved: t.moved,
          ApproximateNumberOfMessagesToMove: t.toMove,
          FailureReason: t.failure,
          StartedTimestamp: t.started,
        }));
      return { body: { Results: results } };
    });
    proxy.serve("sqs", "CancelMessageMoveTask", (c) => {
      const t = this.tasks.find((x) => x.handle === (c.input as { TaskHandle?: string }).TaskHandle);
      if (!t || t.status !== "RUNNING") throw new AwsFault("ResourceNotFoundException", "The resource that you specified for the TaskHandle parameter doesn't exist.");
      t.status = "CANCELLING";
      this.release();
      return { body: { ApproximateNumberOfMessagesMoved: t.moved } };
    });
  }

  hold(): void {
    this.held = true;
  }

  release(): void {
    this.held = false;
    this.wake?.();
  }

  private async urlOf(arn: string): Promise<string> {
    const [, , , , account, name] = arn.split(":");
    try {
      return (await this.sqs.send(new GetQueueUrlCommand({ QueueName: name, QueueOwnerAWSAccountId: account }))).QueueUrl!;
    } catch {
      throw new AwsFault("ResourceNotFoundException", `The resource that you specified for the SourceArn parameter doesn't exist: ${arn}`);
    }
  }

  private async start(input: { SourceArn?: string; DestinationArn?: string; MaxNumberOfMessagesPerSecond?: number }) {
    if (!input.SourceArn) throw new AwsFault("InvalidParameterValue", "SourceArn is required");
    if (input.MaxNumberOfMessagesPerSecond !== undefined && (input.MaxNumberOfMessagesPerSecond < 1 || input.MaxNumberOfMessagesPerSecond > 500)) {
      throw new AwsFault("InvalidParameterValue", "MaxNumberOfMessagesPerSecond must be from 1 to 500");
    }
    if (this.tasks.some((t) => t.source === input.SourceArn && t.status === "RUNNING")) {
      throw new AwsFault("UnsupportedOperation", "Only one active message movement task is supported per queue at any given time.");
    }
    const sourceUrl = await this.urlOf(input.SourceArn);
    const destinationUrl = await this.urlOf(input.DestinationArn ?? input.SourceArn);
    const a = await this.sqs.send(new GetQueueAttributesCommand({ QueueUrl: sourceUrl, AttributeNames: ["ApproximateNumberOfMessages"] }));
    const task: Task = {
      handle: Buffer.from(JSON.stringify({ id: randomUUID(), source: input.SourceArn })).toString("base64"),
      source: input.SourceArn,
      destination: input.DestinationArn ?? input.SourceArn,
      rate: input.MaxNumberOfMessagesPerSecond,
      status: "RUNNING",
      moved: 0,
      toMove: Number(a.Attributes?.ApproximateNumberOfMessages ?? 0),
      started: Date.now(),
    };
    this.tasks.push(task);
    void this.run(task, sourceUrl, destinationUrl);
    return { body: { TaskHandle: task.handle } };
  }

  private async run(t: Task, from: string, to: string): Promise<void> {
    try {
      while (t.status === "RUNNING") {
        if (this.held) {
          await new Promise<void>((resolve) => (this.wake = resolve));
          continue;
        }
        const got = (
          await this.sqs.send(new ReceiveMessageCommand({ QueueUrl: from, MaxNumberOfMessages: Math.min(10, t.rate ?? 10), VisibilityTimeout: 30, MessageAttributeNames: ["All"] }))
        ).Messages ?? [];
        if (!got.length) {
          t.status = "COMPLETED";
          return;
        }
        await this.sqs.send(
          new SendMessageBatchCommand({ QueueUrl: to, Entries: got.map((m, i) => ({ Id: String(i), MessageBody: m.Body!, MessageAttributes: m.MessageAttributes })) }),
        );
        await this.sqs.send(new DeleteMessageBatchCommand({ QueueUrl: from, Entries: got.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })) }));
        t.moved += got.length;
        if (t.rate) await new Promise((r) => setTimeout(r, (got.length / t.rate!) * 1000));
      }
      if (t.status === "CANCELLING") t.status = "CANCELLED";
    } catch (e) {
      t.status = "FAILED";
      t.failure = (e as Error).message;
    }
  }
}
