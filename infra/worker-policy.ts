import { S3Grant } from "./config";
import { METRICS_NAMESPACE } from "../worker/contract";

/** What the worker's policy is scoped to; every ARN it names comes from here. */
export interface WorkerPolicyScope {
  partition: string;
  region: string;
  accountId: string;
  queueArn: string;
  /** SSM path of the worker's environment, ending in "/". */
  ssmPrefix: string;
  asgName: string;
  logGroupArn: string;
  /** The stack's KMS key, which encrypts the secret parameters. */
  keyArn: string;
  s3Access: S3Grant[];
}

export interface PolicyStatement {
  Sid: string;
  Effect: "Allow" | "Deny";
  /** Only in resource policies (key, queue). */
  Principal?: "*" | { AWS?: string | string[]; Service?: string | string[] };
  Action: string[];
  Resource: string[];
  Condition?: Record<string, Record<string, string | string[]>>;
}

export interface PolicyDocument {
  Version: "2012-10-17";
  Statement: PolicyStatement[];
}

/** The CloudWatch agent baked into the AMI publishes memory and disk figures here. */
export const AGENT_METRICS_NAMESPACE = "CWAgent";

/**
 * Exactly what the worker does, and nothing else: no wildcard resource on SQS, SSM, S3 or Auto
 * Scaling. PutMetricData has no resource-level permissions, so a namespace condition scopes it.
 */
export function workerPolicyDocument(s: WorkerPolicyScope): PolicyDocument {
  const path = s.ssmPrefix.replace(/\/$/, "");
  const parameterArn = `arn:${s.partition}:ssm:${s.region}:${s.accountId}:parameter${path}`;
  const asgArn =
    `arn:${s.partition}:autoscaling:${s.region}:${s.accountId}:autoScalingGroup:*:autoScalingGroupName/${s.asgName}`;

  const statements: PolicyStatement[] = [
    {
      // Session Manager instead of SSH. Not AmazonSSMManagedInstanceCore: it also grants
      // ssm:GetParameter on every parameter in the account. These are what the agent needs for a
      // session; ssmmessages has no resource-level permissions.
      Sid: "SessionManagerRegistration",
      Effect: "Allow",
      Action: ["ssm:UpdateInstanceInformation"],
      Resource: [`arn:${s.partition}:ec2:${s.region}:${s.accountId}:instance/*`],
    },
    {
      Sid: "SessionManagerChannels",
      Effect: "Allow",
      Action: ["ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel", "ssmmessages:OpenControlChannel", "ssmmessages:OpenDataChannel"],
      Resource: ["*"],
    },
    {
      Sid: "ConsumeWorkQueue",
      Effect: "Allow",
      Action: ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"],
      Resource: [s.queueArn],
    },
    {
      Sid: "ReadWorkerEnvironment",
      Effect: "Allow",
      Action: ["ssm:GetParametersByPath", "ssm:GetParameters", "ssm:GetParameter"],
      Resource: [parameterArn, `${parameterArn}/*`],
    },
    {
      // The key's own policy names the role too (stackKeyPolicy); either alone would not do.
      Sid: "DecryptWorkerEnvironment",
      Effect: "Allow",
      Action: ["kms:Decrypt"],
      Resource: [s.keyArn],
      Condition: {
        StringEquals: { "kms:ViaService": `ssm.${s.region}.amazonaws.com` },
        StringLike: { "kms:EncryptionContext:PARAMETER_ARN": `${parameterArn}/*` },
      },
    },
    {
      Sid: "DrainOnScaleIn",
      Effect: "Allow",
      Action: [
        "autoscaling:CompleteLifecycleAction",
        "autoscaling:RecordLifecycleActionHeartbeat",
        "autoscaling:SetInstanceHealth",
      ],
      Resource: [asgArn],
    },
    {
      Sid: "PublishWorkerMetrics",
      Effect: "Allow",
      Action: ["cloudwatch:PutMetricData"],
      Resource: ["*"],
      Condition: { StringEquals: { "cloudwatch:namespace": [METRICS_NAMESPACE, AGENT_METRICS_NAMESPACE] } },
    },
    {
      Sid: "WriteWorkerLogs",
      Effect: "Allow",
      Action: ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
      Resource: [s.logGroupArn, `${s.logGroupArn}:log-stream:*`],
    },
  ];

  s.s3Access.forEach((grant, i) => {
    const bucketArn = `arn:${s.partition}:s3:::${grant.bucket}`;
    const objects = `${bucketArn}/${grant.prefix}*`;
    if (grant.access !== "write") {
      statements.push(
        { Sid: `ReadObjects${i}`, Effect: "Allow", Action: ["s3:GetObject"], Resource: [objects] },
        {
          Sid: `ListObjects${i}`,
          Effect: "Allow",
          Action: ["s3:ListBucket"],
          Resource: [bucketArn],
          Condition: { StringLike: { "s3:prefix": [`${grant.prefix}*`] } },
        },
      );
    }
    if (grant.access !== "read") {
      statements.push({
        Sid: `WriteObjects${i}`,
        Effect: "Allow",
        Action: ["s3:PutObject", "s3:AbortMultipartUpload"],
        Resource: [objects],
      });
    }
  });

  return { Version: "2012-10-17", Statement: statements };
}
