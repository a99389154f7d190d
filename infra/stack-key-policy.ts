import type { PolicyDocument } from "./worker-policy";

export interface StackKeyScope {
  partition: string;
  region: string;
  accountId: string;
  /** Who runs `pulumi up`: the IAM role or user behind the deploy's session (not the session itself). */
  deployerArn: string;
  workerRoleArn: string;
  /** SSM path of the worker's environment, ending in "/". */
  ssmPrefix: string;
  alarmTopicArn: string;
  /** Alarm names start with this; only they may publish to the topic. */
  alarmNamePrefix: string;
}

/**
 * Actions that manage the key but never use it: the account's administrators keep them (through
 * their IAM policies), so the key cannot become unmanageable when the deployer's role is gone. No
 * CreateGrant: a grant is a way to hand out Decrypt.
 */
export const KEY_ADMINISTRATION_ACTIONS = [
  "kms:DescribeKey",
  "kms:GetKeyPolicy",
  "kms:PutKeyPolicy",
  "kms:GetKeyRotationStatus",
  "kms:EnableKeyRotation",
  "kms:DisableKeyRotation",
  "kms:ListKeyRotations",
  "kms:RotateKeyOnDemand",
  "kms:ListResourceTags",
  "kms:TagResource",
  "kms:UntagResource",
  "kms:UpdateKeyDescription",
  "kms:CreateAlias",
  "kms:UpdateAlias",
  "kms:DeleteAlias",
  "kms:ListGrants",
  "kms:RevokeGrant",
  "kms:EnableKey",
  "kms:DisableKey",
  "kms:ScheduleKeyDeletion",
  "kms:CancelKeyDeletion",
];

/**
 * The stack's customer managed key. The account's `aws/ssm` key "grants Decrypt permission to all
 * IAM principals in the account", so any role that could read the parameters could read the
 * secrets; this key's policy names who may use it, and IAM policies alone cannot add anyone:
 * - the worker role decrypts its own parameters, through SSM;
 * - the deployer encrypts them through SSM, and decrypts them too, because the Pulumi AWS provider
 *   reads a SecureString back (with decryption) after writing it and on every refresh;
 * - CloudWatch encrypts this stack's alarm notifications into its SNS topic (an alarm cannot
 *   publish to a topic under `aws/sns`).
 */
export function stackKeyPolicy(s: StackKeyScope): PolicyDocument {
  const parameters = `arn:${s.partition}:ssm:${s.region}:${s.accountId}:parameter${s.ssmPrefix}*`;
  const throughSsm = {
    StringEquals: { "kms:ViaService": `ssm.${s.region}.amazonaws.com` },
    StringLike: { "kms:EncryptionContext:PARAMETER_ARN": parameters },
  };
  return {
    Version: "2012-10-17",
    Statement: [
      {
        Sid: "AccountAdministersKey",
        Effect: "Allow",
        Principal: { AWS: `arn:${s.partition}:iam::${s.accountId}:root` },
        Action: KEY_ADMINISTRATION_ACTIONS,
        Resource: ["*"],
      },
      {
        Sid: "DeployerWritesWorkerSecrets",
        Effect: "Allow",
        Principal: { AWS: s.deployerArn },
        Action: ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey"],
        Resource: ["*"],
        Condition: throughSsm,
      },
      {
        Sid: "WorkerReadsItsSecrets",
        Effect: "Allow",
        Principal: { AWS: s.workerRoleArn },
        Action: ["kms:Decrypt"],
        Resource: ["*"],
        Condition: throughSsm,
      },
      {
        Sid: "AlarmsNotifyTheTopic",
        Effect: "Allow",
        Principal: { Service: "cloudwatch.amazonaws.com" },
        Action: ["kms:Decrypt", "kms:GenerateDataKey*"],
        Resource: ["*"],
        Condition: {
          StringEquals: { "aws:SourceAccount": s.accountId, "kms:EncryptionContext:aws:sns:topicArn": s.alarmTopicArn },
          ArnLike: { "aws:SourceArn": `arn:${s.partition}:cloudwatch:${s.region}:${s.accountId}:alarm:${s.alarmNamePrefix}*` },
        },
      },
    ],
  };
}
