import type { PolicyDocument, PolicyStatement } from "./worker-policy";

/**
 * A queue's resource policy: nothing over plain HTTP, from anyone; and, for the main queue, the
 * senders `kiln:queueSenders` names. This account's own principals need no statement here: their
 * IAM policy's sqs:SendMessage suffices.
 */
export function queuePolicyDocument(queueArn: string, accountId: string, senders: string[] = []): PolicyDocument {
  const statements: PolicyStatement[] = [
    {
      Sid: "DenyInsecureTransport",
      Effect: "Deny",
      Principal: "*",
      Action: ["sqs:*"],
      Resource: [queueArn],
      Condition: { Bool: { "aws:SecureTransport": "false" } },
    },
  ];
  const partition = queueArn.split(":")[1];
  senders.forEach((sender, i) =>
    statements.push({
      Sid: `Sender${i}`,
      Effect: "Allow",
      ...senderStatement(sender, accountId, partition),
      Action: ["sqs:SendMessage"],
      Resource: [queueArn],
    }),
  );
  return { Version: "2012-10-17", Statement: statements };
}

/**
 * Who a `kiln:queueSenders` entry lets send. An AWS service sends on behalf of one resource, named
 * in aws:SourceArn: without it, any bucket, rule or topic in any account could use the grant (the
 * confused deputy). S3 bucket ARNs carry no account, so the bucket must also be this account's.
 */
export function senderStatement(sender: string, accountId: string, partition: string): Pick<PolicyStatement, "Principal" | "Condition"> {
  if (/^\d{12}$/.test(sender)) return { Principal: { AWS: `arn:${partition}:iam::${sender}:root` } };
  const service = /^arn:aws[a-z-]*:(iam|s3|events|sns):/.exec(sender)?.[1];
  switch (service) {
    case "iam":
      return { Principal: { AWS: sender } };
    case "s3":
      return {
        Principal: { Service: "s3.amazonaws.com" },
        Condition: { ArnEquals: { "aws:SourceArn": sender }, StringEquals: { "aws:SourceAccount": accountId } },
      };
    case "events":
      return { Principal: { Service: "events.amazonaws.com" }, Condition: { ArnEquals: { "aws:SourceArn": sender } } };
    case "sns":
      return { Principal: { Service: "sns.amazonaws.com" }, Condition: { ArnEquals: { "aws:SourceArn": sender } } };
    default:
      throw new Error(`${sender} is not a queue sender kiln knows (config validation should have caught it)`);
  }
}
