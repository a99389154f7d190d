import { CreateQueueCommand, GetQueueAttributesCommand, QueueAttributeName, SQSClient } from "@aws-sdk/client-sqs";
import type { FleetPlan } from "./plan";

export interface LocalQueues {
  url: string;
  dlqUrl: string;
}

/** What a queue holds; `inFlight` includes failed messages waiting out their retry delay. */
export interface QueueDepth {
  visible: number;
  inFlight: number;
  delayed: number;
}

export const emptyDepth = (): QueueDepth => ({ visible: 0, inFlight: 0, delayed: 0 });

/** The stack's WorkQueue (infra/work-queue.ts) on the embedded SQS: same redrive, retention and waits. */
export async function createQueues(sqs: SQSClient, plan: FleetPlan): Promise<LocalQueues> {
  const dlq = await sqs.send(
    new CreateQueueCommand({ QueueName: plan.dlqName, Attributes: { MessageRetentionPeriod: String(14 * 24 * 3600) } }),
  );
  const dlqArn = (await attributes(sqs, dlq.QueueUrl!, ["QueueArn"])).QueueArn;
  const main = await sqs.send(
    new CreateQueueCommand({
      QueueName: plan.queueName,
      Attributes: {
        VisibilityTimeout: String(plan.visibilityTimeout),
        MessageRetentionPeriod: String(plan.cfg.messageRetentionDays * 24 * 3600),
        ReceiveMessageWaitTimeSeconds: String(plan.cfg.sqsWaitTime),
        RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: plan.cfg.maxReceiveCount }),
      },
    }),
  );
  return { url: main.QueueUrl!, dlqUrl: dlq.QueueUrl! };
}

async function attributes(sqs: SQSClient, queueUrl: string, names: QueueAttributeName[]): Promise<Record<string, string>> {
  const out = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: names }));
  return out.Attributes ?? {};
}

export async function queueDepth(sqs: SQSClient, queueUrl: string): Promise<QueueDepth> {
  const a = await attributes(sqs, queueUrl, [
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
  ]);
  return {
    visible: Number(a.ApproximateNumberOfMessages ?? 0),
    inFlight: Number(a.ApproximateNumberOfMessagesNotVisible ?? 0),
    delayed: Number(a.ApproximateNumberOfMessagesDelayed ?? 0),
  };
}

/**
 * Messages whose visibility timeout has ended though the emulator still counts them in flight.
 * fauxqs moves such a message back only when a receive or a waiting long poll comes by, where SQS
 * shows it again at once; with no worker left polling, the fleet would never see it to scale
 * for. Its inspection endpoint (read-only, fauxqs's own) gives each in-flight message's deadline.
 */
export async function expiredInFlight(endpoint: string, queueName: string, now = Date.now()): Promise<number> {
  const res = await fetch(`${endpoint}/_fauxqs/queues/${encodeURIComponent(queueName)}`);
  if (!res.ok) return 0;
  const body = (await res.json()) as { messages?: { inflight?: { visibilityDeadline?: number }[] } };
  return (body.messages?.inflight ?? []).filter((m) => (m.visibilityDeadline ?? Infinity) <= now).length;
}

export const total = (d: QueueDepth) => d.visible + d.inFlight + d.delayed;
