import * as pulumi from "@pulumi/pulumi";
import * as aws from "@pulumi/aws";
import { queuePolicyDocument } from "./queue-policy";

export interface WorkQueueArgs {
  /** Receives before a message moves to the dead-letter queue. */
  maxReceiveCount: number;
  visibilityTimeoutSeconds: number;
  messageRetentionSeconds: number;
  receiveWaitTimeSeconds: number;
  /** The account the queues are in: the S3 senders' buckets must be its own. */
  accountId: pulumi.Input<string>;
  /** Who else may send to the main queue (`kiln:queueSenders`). */
  senders: string[];
  tags: Record<string, string>;
}

/**
 * The main queue and its dead-letter queue, both encrypted, wired by redrive in both directions,
 * refusing plain HTTP, and open to the senders the stack names.
 */
export class WorkQueue extends pulumi.ComponentResource {
  readonly queue: aws.sqs.Queue;
  readonly deadLetterQueue: aws.sqs.Queue;

  constructor(name: string, args: WorkQueueArgs, opts?: pulumi.ComponentResourceOptions) {
    super("kiln:queue:WorkQueue", name, {}, opts);

    this.deadLetterQueue = new aws.sqs.Queue(
      `${name}-dlq`,
      {
        // The longest SQS allows: time to find and fix what failed, then redrive.
        messageRetentionSeconds: 14 * 24 * 3600,
        sqsManagedSseEnabled: true,
        tags: args.tags,
      },
      { parent: this },
    );

    this.queue = new aws.sqs.Queue(
      name,
      {
        visibilityTimeoutSeconds: args.visibilityTimeoutSeconds,
        messageRetentionSeconds: args.messageRetentionSeconds,
        receiveWaitTimeSeconds: args.receiveWaitTimeSeconds,
        sqsManagedSseEnabled: true,
        redrivePolicy: this.deadLetterQueue.arn.apply((deadLetterTargetArn) =>
          JSON.stringify({ deadLetterTargetArn, maxReceiveCount: args.maxReceiveCount }),
        ),
        tags: args.tags,
      },
      { parent: this },
    );

    // Only this queue may dead-letter into the DLQ, and a DLQ redrive can only go back to it.
    new aws.sqs.RedriveAllowPolicy(
      `${name}-dlq-allow`,
      {
        queueUrl: this.deadLetterQueue.url,
        redriveAllowPolicy: this.queue.arn.apply((arn) =>
          JSON.stringify({ redrivePermission: "byQueue", sourceQueueArns: [arn] }),
        ),
      },
      { parent: this },
    );

    for (const [queue, suffix, senders] of [
      [this.queue, "policy", args.senders],
      [this.deadLetterQueue, "dlq-policy", []],
    ] as const) {
      new aws.sqs.QueuePolicy(
        `${name}-${suffix}`,
        {
          queueUrl: queue.url,
          policy: pulumi
            .all([queue.arn, args.accountId])
            .apply(([arn, accountId]) => JSON.stringify(queuePolicyDocument(arn, accountId, [...senders]))),
        },
        { parent: this },
      );
    }

    this.registerOutputs({ queueUrl: this.queue.url, deadLetterQueueUrl: this.deadLetterQueue.url });
  }
}
