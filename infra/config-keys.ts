import { z } from "zod";
import { LOG_LEVELS, WORKER_DEFAULTS } from "../worker/contract";

/**
 * Every `kiln:*` stack config key: its Pulumi type, default, description and what a valid value is.
 * Pulumi.yaml declares the same keys (a test keeps the two equal) and docs/config.md documents them.
 *
 * Pulumi's project config schema knows string, integer, boolean and array; maps are `object` here
 * and stay undeclared in Pulumi.yaml. A key declared there without a default is required by the
 * Pulumi CLI itself, so optional keys use "" or 0 to mean "unset".
 */
export type KeyType = "string" | "integer" | "boolean" | "array" | "object";

export interface KeySpec {
  type: KeyType;
  description: string;
  /** Absent: the key is required. */
  default?: string | number | boolean | string[] | Record<string, string>;
  /** Validates the decoded value; its messages say what would be valid. */
  schema: z.ZodType;
  /** Shown in docs/config.md's default column. */
  example?: string;
}

const int = (min: number, max: number, unit = "") =>
  z
    .number()
    .int(`must be a whole number${unit} from ${min} to ${max}`)
    .min(min, `must be a whole number${unit} from ${min} to ${max}`)
    .max(max, `must be a whole number${unit} from ${min} to ${max}`);

const AMI_ID = /^ami-([0-9a-f]{8}|[0-9a-f]{17})$/;
const SUBNET_ID = /^subnet-([0-9a-f]{8}|[0-9a-f]{17})$/;
const INSTANCE_TYPE = /^[a-z][a-z0-9-]*\.[a-z0-9]+$/;
const EMAIL = /^[^@\s]+@[^@\s]+\.[^@\s]+$/;
const RESERVED_MAIL_DOMAIN = /@(([^@]+\.)?example\.(com|net|org)|[^@]+\.(example|test|invalid|localhost))$/i;
/** What the environment of a POSIX process accepts as a name, and what systemd's env files read. */
export const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/**
 * `read:bucket/prefix/`: S3 bucket naming rules, then a prefix without wildcards or policy variables
 * (`$`), ending in `/` so `uploads/` cannot also grant `uploads-archive/`.
 */
export const S3_GRANT = /^(read|write|readwrite):([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])\/([^*?$\s]*\/)$/;

/** Who may send to the work queue (infra/queue-policy.ts turns each into a policy statement). */
export const QUEUE_SENDER = new RegExp(
  [
    /^\d{12}$/,
    /^arn:aws[a-z-]*:iam::\d{12}:(root|role\/[\w+=,.@\/-]+|user\/[\w+=,.@\/-]+)$/,
    /^arn:aws[a-z-]*:s3:::[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/,
    /^arn:aws[a-z-]*:events:[a-z0-9-]+:\d{12}:rule\/[\w.\/-]+$/,
    /^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[\w-]{1,256}(\.fifo)?$/,
  ]
    .map((r) => `(${r.source})`)
    .join("|"),
);

const instanceType = z.string().regex(INSTANCE_TYPE, "must be an EC2 instance type such as t3.medium");

/** SSM Parameter Store (standard tier) holds 1 to 4096 characters; it rejects an empty value. */
const envValue = z
  .union([z.string(), z.number(), z.boolean()], "must be a string, number or boolean")
  .transform((v) => String(v))
  .pipe(z.string().min(1, "must not be empty (SSM refuses empty values)").max(4096, "must be at most 4096 characters (SSM standard tier)"));

const envMap = z.record(
  z.string().regex(ENV_NAME, "names must be environment variable names (letters, digits, _; not starting with a digit)"),
  envValue,
  "must be a map of NAME: value",
);

const REGION = /^[a-z]{2}(-[a-z]+)+-\d+$/;
/**
 * What EC2 takes as a KMS key for EBS (RunInstances' and CopyImage's KmsKeyId): "Key ID. For example,
 * 1234abcd-12ab-34cd-56ef-1234567890ab. Key alias. For example, alias/ExampleAlias. Key ARN. ... Alias ARN."
 * (multi-Region keys' ids start mrk-).
 */
const KMS_KEY = /^((mrk-[0-9a-f]{32})|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|alias\/[A-Za-z0-9/_-]{1,250}|arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(key\/(mrk-[0-9a-f]{32}|[0-9a-f-]{36})|alias\/[A-Za-z0-9/_-]{1,250}))$/;
const kmsKey = z.string().regex(KMS_KEY, "must be a KMS key id, alias/name, key ARN or alias ARN");
const seconds = (min: number, max: number) => int(min, max, " of seconds").optional();

/** kiln:bake: each setting on its own, then the rules that tie settings together (AWS's, quoted). */
function bakeSchema() {
  return z
    .strictObject(
      {
        instanceType: instanceType.optional(),
        subnetId: z.string().regex(SUBNET_ID, "must be a subnet id such as subnet-0123456789abcdef0").optional(),
        baseImage: z
          .string()
          .regex(/^(ami-([0-9a-f]{8}|[0-9a-f]{17})|\/[A-Za-z0-9_.\/-]+)$/, "must be an AMI id or an SSM parameter path such as /aws/service/...")
          .optional(),
        sshCidr: z.string().regex(/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/, "must be an IPv4 CIDR such as 203.0.113.0/24").optional(),
        sshUser: z.string().regex(/^[a-z_][a-z0-9_-]*$/, "must be a user name such as ec2-user").optional(),
        // Packer's ssh_interface values, for the same three ways in.
        sshInterface: z.enum(["public_ip", "private_ip", "session_manager"], "must be public_ip, private_ip or session_manager").optional(),
        keep: z.number().int().min(1, "must keep at least 1 image").max(100).optional(),
        rootVolumeSize: z.number().int().min(8).max(16_384).optional(),
        appDir: z.string().min(1, "must name a directory").optional(),
        tags: z.record(z.string().min(1).max(128), z.string().max(256)).optional(),
        sshTimeout: seconds(10, 7200),
        instanceTimeout: seconds(30, 3600),
        imageTimeout: seconds(60, 86_400),
        requestTimeout: seconds(5, 300),
        builderLifetime: int(15, 1440, " of minutes").optional(),
        kmsKeyId: kmsKey.optional(),
        copyRegions: z.array(z.string().regex(REGION, "must be region names such as eu-west-1"), "must be a list of regions").optional(),
        regionKmsKeyIds: z.record(z.string().regex(REGION, "keys must be region names such as eu-west-1"), kmsKey, "must be a map of region: KMS key").optional(),
        shareAccounts: z.array(z.string().regex(/^\d{12}$/, "must be 12-digit AWS account ids"), "must be a list of account ids").optional(),
      },
      // An unknown setting is reported by config.ts, one per key, with a "did you mean".
      { error: (issue) => (issue.code === "unrecognized_keys" ? undefined : "must be a map of bake settings") },
    )
    .superRefine((b, ctx) => {
      const regions = b.copyRegions ?? [];
      const dup = regions.find((r, i) => regions.indexOf(r) !== i);
      if (dup) ctx.addIssue({ code: "custom", path: ["copyRegions"], message: `names ${dup} twice` });
      if (b.regionKmsKeyIds && !b.kmsKeyId) {
        ctx.addIssue({ code: "custom", path: ["regionKmsKeyIds"], message: "needs kmsKeyId: the copies are encrypted with a customer managed key only when the image is" });
      }
      for (const r of Object.keys(b.regionKmsKeyIds ?? {})) {
        if (!regions.includes(r)) ctx.addIssue({ code: "custom", path: ["regionKmsKeyIds"], message: `names ${r}, which is not in copyRegions` });
      }
      // A KMS key lives in one region, and CopyImage encrypts the copy in the destination region:
      // "KmsKeyId: The identifier of the symmetric KMS key to use when creating encrypted volumes" there.
      if (b.kmsKeyId && regions.length) {
        const missing = regions.filter((r) => !b.regionKmsKeyIds?.[r]);
        if (missing.length) {
          ctx.addIssue({ code: "custom", path: ["regionKmsKeyIds"], message: `needs a KMS key for ${missing.join(", ")}: with kmsKeyId, every copy region needs its own key (alias/... or an ARN in that region)` });
        }
      }
      // EC2 User Guide, sharing AMIs: "AMIs with volumes that are encrypted with an AWS managed key can't
      // be shared. You can only share AMIs with volumes that are encrypted with a customer managed key."
      if (b.shareAccounts?.length && !b.kmsKeyId) {
        ctx.addIssue({ code: "custom", path: ["shareAccounts"], message: "needs kmsKeyId: an image encrypted with the AWS managed EBS key cannot be shared; use a customer managed key whose policy lets those accounts use it" });
      }
    });
}

export const CONFIG_KEYS = {
  amiId: {
    type: "string",
    default: "",
    description: "Worker AMI the fleet runs. Written by `npm run bake-ami -- --stack <stack>`.",
    schema: z.string().regex(AMI_ID, "must be an AMI id such as ami-0123456789abcdef0").or(z.literal("")),
    example: "ami-0123456789abcdef0",
  },
  instanceType: {
    type: "string",
    default: "t3.medium",
    description: "EC2 instance type of the workers.",
    schema: instanceType,
  },
  subnetIds: {
    type: "array",
    description: "Subnets (usually private) the Auto Scaling group spreads workers over.",
    schema: z
      .array(z.string().regex(SUBNET_ID, "must hold subnet ids such as subnet-0123456789abcdef0"), "must be a list of subnet ids")
      .min(1, "must list at least one subnet id")
      .refine((ids) => new Set(ids).size === ids.length, "must not list a subnet twice"),
    example: "[subnet-0123456789abcdef0]",
  },
  minSize: {
    type: "integer",
    default: 1,
    description: "Fewest workers. 0 lets the fleet scale to nothing when the queue is empty.",
    schema: int(0, 1000),
  },
  maxSize: {
    type: "integer",
    default: 5,
    description: "Most workers.",
    schema: int(1, 1000),
  },
  rootVolumeSize: {
    type: "integer",
    default: 30,
    description: "Root volume size in GiB (encrypted gp3).",
    schema: int(8, 16384, " of GiB"),
  },
  cpuCredits: {
    type: "string",
    default: "standard",
    description:
      "CPU credits of burstable (T) instance types: standard (throttled to the baseline when credits run out) or unlimited " +
      "(bursts on, surplus credits billed; an alarm watches CPUSurplusCreditsCharged). AWS launches T3 as unlimited unless told.",
    schema: z.enum(["standard", "unlimited"], "must be standard or unlimited"),
  },
  spot: {
    type: "boolean",
    default: false,
    description: "Run workers on Spot capacity (mixed instances policy, capacity rebalancing).",
    schema: z.boolean(),
  },
  spotInstanceTypes: {
    type: "array",
    default: [],
    description: "With spot: instance types to choose from (default: just instanceType). More types, fewer interruptions.",
    schema: z
      .array(instanceType, "must be a list of instance types")
      .max(20, "must list at most 20 instance types")
      .refine((l) => new Set(l).size === l.length, "must not list an instance type twice"),
  },
  onDemandBaseCapacity: {
    type: "integer",
    default: 0,
    description: "With spot: workers that always run on demand.",
    schema: int(0, 1000),
  },
  onDemandPercentageAboveBase: {
    type: "integer",
    default: 0,
    description: "With spot: percentage of workers above the base that run on demand.",
    schema: int(0, 100, " of percent"),
  },
  // SQS RedrivePolicy: "maxReceiveCount ... Valid values: 1 to 1,000."
  maxReceiveCount: {
    type: "integer",
    default: 3,
    description: "Receives before a message moves to the dead-letter queue (the seeds' MAX_RETRIES=2 plus the first try).",
    schema: int(1, 1000),
  },
  // SQS MessageRetentionPeriod: "An integer from 60 seconds (1 minute) to 1,209,600 seconds (14 days)."
  messageRetentionDays: {
    type: "integer",
    default: 4,
    description: "Days the main queue keeps a message, at most 13: the DLQ keeps 14, and a message's age carries over into it.",
    schema: int(1, 13, " of days (the DLQ keeps 14)"),
  },
  // SQS VisibilityTimeout: "An integer from 0 to 43,200 (12 hours)."
  visibilityTimeout: {
    type: "integer",
    default: WORKER_DEFAULTS.SQS_VISIBILITY_TIMEOUT,
    description: "SQS_VISIBILITY_TIMEOUT: seconds a received message stays hidden; must exceed processingTimeout.",
    schema: int(1, 43200, " of seconds"),
  },
  processingTimeout: {
    type: "integer",
    default: WORKER_DEFAULTS.PROCESSING_TIMEOUT,
    description: "PROCESSING_TIMEOUT: seconds one message may take before its handler is aborted.",
    schema: int(1, 43199, " of seconds"),
  },
  // SQS ReceiveMessage MaxNumberOfMessages: "Valid values: 1 to 10."
  sqsMaxMessages: {
    type: "integer",
    default: WORKER_DEFAULTS.SQS_MAX_MESSAGES,
    description: "SQS_MAX_MESSAGES: messages per receive.",
    schema: int(1, 10),
  },
  // SQS ReceiveMessage WaitTimeSeconds: "An integer from 0 to 20 (seconds)."
  sqsWaitTime: {
    type: "integer",
    default: WORKER_DEFAULTS.SQS_WAIT_TIME,
    description: "SQS_WAIT_TIME: long-poll seconds.",
    schema: int(0, 20, " of seconds"),
  },
  maxWorkers: {
    type: "integer",
    default: 0,
    description: "MAX_WORKERS: handlers running at once per instance; 0 derives it from the instance's vCPUs at boot.",
    schema: int(0, 1000),
  },
  workerMaxMessages: {
    type: "integer",
    default: 0,
    description: "WORKER_MAX_MESSAGES: replace each handler thread or app process after this many messages, in place; 0 is off.",
    schema: int(0, 1_000_000_000),
  },
  workerMaxRssMb: {
    type: "integer",
    default: 0,
    description: "WORKER_MAX_RSS_MB: above this resident memory of the worker and everything it runs, replace the largest handler thread or app process; 0 is off.",
    schema: int(0, 1_048_576, " of MiB"),
  },
  workerMaxLifetime: {
    type: "integer",
    default: 0,
    description: "WORKER_MAX_LIFETIME: replace each handler thread or app process after this many seconds, in place; 0 is off.",
    schema: int(0, 31_536_000, " of seconds"),
  },
  drainTimeout: {
    type: "integer",
    default: WORKER_DEFAULTS.WORKER_DRAIN_TIMEOUT,
    description:
      "WORKER_DRAIN_TIMEOUT: seconds in-flight work may take after SIGTERM (a stop or reboot); what is left returns to the queue. " +
      "At most 80: kiln-worker.service stops the worker after TimeoutStopSec=90. Scale-in has its own budget, kiln:scaleInTimeout.",
    schema: int(1, 80, " of seconds (kiln-worker.service's TimeoutStopSec is 90)"),
  },
  scaleInTimeout: {
    type: "integer",
    default: 0,
    description:
      "WORKER_SCALE_IN_TIMEOUT: seconds a worker being scaled in (scale-in, instance refresh, rebalancing) may take to finish its " +
      "messages while the lifecycle hook holds the instance, heartbeating it. At least processingTimeout; 0: processingTimeout + 30.",
    schema: int(0, 43_200, " of seconds"),
  },
  retryDelay: {
    type: "integer",
    default: WORKER_DEFAULTS.WORKER_RETRY_DELAY,
    description: "WORKER_RETRY_DELAY: seconds before a failed message's first retry, doubled on each further receive.",
    schema: int(0, 43_200, " of seconds"),
  },
  logLevel: {
    type: "string",
    default: WORKER_DEFAULTS.LOG_LEVEL,
    description: `LOG_LEVEL of the worker: ${LOG_LEVELS.join(", ")}.`,
    schema: z.enum(LOG_LEVELS, `must be one of ${LOG_LEVELS.join(", ")}`),
  },
  workerHandler: {
    type: "string",
    default: "",
    description: "WORKER_HANDLER: path on the instance of a JS module exporting handle(message, { signal }).",
    schema: z.string(),
    example: "/opt/app/handler.js",
  },
  workerCommand: {
    type: "string",
    default: "",
    description: "WORKER_COMMAND: command run once per message, body on stdin, exit 0 = done. Exactly one of this and workerHandler.",
    schema: z.string(),
    example: "/opt/app/venv/bin/python3 /opt/app/worker.py",
  },
  workerApp: {
    type: "string",
    default: "",
    description:
      "WORKER_APP: command starting a long-lived HTTP app (any language) on $PORT; each message is POSTed to it as Elastic Beanstalk's sqsd does, 200 = done. " +
      "One process per MAX_WORKERS slot. Exactly one of this, workerHandler and workerCommand.",
    schema: z.string(),
    example: "/opt/file-processor/venv/bin/python3 /opt/file-processor/app.py",
  },
  workerAppHealthPath: {
    type: "string",
    default: "",
    description: "WORKER_APP_HEALTH_PATH: path the app answers 2xx on once ready; empty: ready as soon as it answers HTTP at all.",
    schema: z.string().regex(/^(\/[A-Za-z0-9._~!$&'()*+,;=:@%\/-]*)?$/, "must be a URL path such as /health").or(z.literal("")),
    example: "/health",
  },
  workerAppStartTimeout: {
    type: "integer",
    default: WORKER_DEFAULTS.WORKER_APP_START_TIMEOUT,
    description: "WORKER_APP_START_TIMEOUT: seconds an app process may take to become ready; never ready is a configuration error.",
    schema: int(1, 3600, " of seconds"),
  },
  acceptableLatency: {
    type: "integer",
    default: 600,
    description: "Seconds a message may wait before being processed: drives the scaling target and the oldest-message alarm.",
    schema: int(1, 1_209_600, " of seconds"),
  },
  avgProcessingMs: {
    type: "integer",
    default: 300,
    description: "Average milliseconds of one instance's time per message (wall time divided by its parallel workers).",
    schema: int(1, 43_200_000, " of milliseconds"),
  },
  scaleOutCooldown: {
    type: "integer",
    default: 60,
    description: "Seconds a new instance warms up before scale-out counts it (the seeds' scale-out cooldown).",
    schema: int(0, 3600, " of seconds"),
  },
  scaleInCooldown: {
    type: "integer",
    default: 300,
    description:
      "The group's default cooldown (the seeds' scale-in cooldown) and the local fleet's scale-in pace. AWS target tracking ignores it: it scales in after 15 minutes of low backlog.",
    schema: int(0, 3600, " of seconds"),
  },
  instanceWarmup: {
    type: "integer",
    default: 300,
    description: "Seconds a new instance needs before it serves: default instance warm-up and instance refresh warm-up.",
    schema: int(0, 3600, " of seconds"),
  },
  // AWS RefreshPreferences: MinHealthyPercentage 0 to 100, MaxHealthyPercentage 100 to 200, "and the
  // difference between them cannot be greater than 100" (a cross-check in config-checks.ts).
  refreshMinHealthyPercentage: {
    type: "integer",
    default: 100,
    description: "Percentage of the fleet kept in service while an instance refresh replaces it.",
    schema: int(0, 100, " of percent"),
  },
  refreshMaxHealthyPercentage: {
    type: "integer",
    default: 200,
    description:
      "Percentage of the fleet that may be in service or launching during an instance refresh: above 100 launches replacements " +
      "before terminating. At most refreshMinHealthyPercentage + 100 (an AWS rule).",
    schema: int(100, 200, " of percent"),
  },
  alarmEmail: {
    type: "string",
    default: "",
    description: "Email address subscribed to the fleet's alarms (it must confirm the subscription); empty for none.",
    schema: z
      .string()
      .regex(EMAIL, "must be an email address")
      // RFC 2606 and 6761 reserve these names: no mail is delivered there, so SNS's confirmation
      // never arrives and the subscription stays pending.
      .refine((a) => !RESERVED_MAIL_DOMAIN.test(a), "is at a reserved example domain that receives no mail: the subscription could never be confirmed")
      .or(z.literal("")),
    example: "ops@your-company.com",
  },
  errorRateAlarmPercent: {
    type: "integer",
    default: 10,
    description: "Percentage of failed messages (of those handled, over 5 minutes) that raises the error-rate alarm.",
    schema: int(1, 100, " of percent"),
  },
  // CloudWatch Logs PutRetentionPolicy: "Possible values are: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180,
  // 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, and 3653."
  logRetentionDays: {
    type: "integer",
    default: 30,
    description: "Days CloudWatch Logs keeps the workers' logs.",
    schema: z
      .number()
      .refine(
        (d) => [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653].includes(d),
        "must be one of CloudWatch's retention periods: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, ... 3653",
      ),
  },
  s3Access: {
    type: "array",
    default: [],
    description: "The application's S3 access, one grant each: `read:`, `write:` or `readwrite:` then bucket/prefix.",
    schema: z.array(
      z.string().regex(S3_GRANT, "must hold grants like read:my-bucket/uploads/ (read, write or readwrite, a bucket, a prefix ending in / without * ? or $)"),
      "must be a list of grants",
    ),
    example: "[read:my-bucket/uploads/, write:my-bucket/processed/]",
  },
  vpcEndpoints: {
    type: "boolean",
    default: false,
    description:
      "Create VPC endpoints for what the workers call (SQS, SSM, CloudWatch, Auto Scaling, KMS; S3 as a gateway), for subnets " +
      "without a NAT gateway. Your application's own services still need a route (docs/deploy.md).",
    schema: z.boolean(),
  },
  queueSenders: {
    type: "array",
    default: [],
    description:
      "Who else may send to the work queue: an AWS account id or IAM role/user ARN (another account), or the ARN of an S3 bucket, " +
      "EventBridge rule or SNS topic that delivers to it. This account's principals need only sqs:SendMessage in their own policy.",
    schema: z
      .array(
        z.string().regex(QUEUE_SENDER, "must hold an account id, an IAM role or user ARN, or an S3 bucket, EventBridge rule or SNS topic ARN"),
        "must be a list of senders",
      )
      .refine((l) => new Set(l).size === l.length, "must not list a sender twice"),
    example: "[arn:aws:s3:::my-uploads]",
  },
  env: {
    type: "object",
    default: {},
    description: "The application's plain environment variables (NAME: value), stored as SSM String parameters.",
    schema: envMap,
    example: "{OCR_LANGUAGE: jpn+eng, PDF_DPI: 200}",
  },
  secretEnv: {
    type: "object",
    default: {},
    description: "The application's secrets, set with `pulumi config set --secret --path 'kiln:secretEnv.NAME'`; SecureString parameters.",
    schema: envMap,
    example: "{OPENSEARCH_PASSWORD: {secure: ...}}",
  },
  bake: {
    type: "object",
    default: {},
    description:
      "How `npm run bake-ami` builds the image (docs/bake.md lists every setting): instanceType, subnetId, baseImage, sshCidr, sshUser, sshInterface " +
      "(public_ip, private_ip or session_manager: through Session Manager, with AWS's session-manager-plugin where you bake), keep, rootVolumeSize, appDir, tags, the deadlines (sshTimeout, instanceTimeout, imageTimeout, " +
      "requestTimeout, builderLifetime) and distribution (kmsKeyId, copyRegions, regionKmsKeyIds, shareAccounts).",
    schema: bakeSchema(),
    example: "{subnetId: subnet-0123..., sshInterface: session_manager, keep: 3}",
  },
  // AWS tagging rules: at most 50 tags per resource, keys 1 to 128 characters, values up to 256, and
  // "the aws: prefix is reserved for AWS use" in any case (the count is a cross-check).
  tags: {
    type: "object",
    default: {},
    description: "Extra tags on every resource that takes them (cost allocation, ownership).",
    schema: z.record(
      z
        .string()
        .min(1, "tag keys must not be empty")
        .max(128, "tag keys must be at most 128 characters")
        .refine((k) => !/^aws:/i.test(k), "tag keys must not start with aws: (reserved by AWS)"),
      z.string().max(256, "tag values must be at most 256 characters"),
      "must be a map of key: value",
    ),
    example: "{Application: file-processor}",
  },
} satisfies Record<string, KeySpec>;

export type ConfigKey = keyof typeof CONFIG_KEYS;
