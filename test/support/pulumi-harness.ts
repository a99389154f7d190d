import * as path from "node:path";
import { createHash } from "node:crypto";
import * as pulumi from "@pulumi/pulumi";
import { readStackFile } from "../../infra/stack-file";

export const ACCOUNT = "123456789012";
export const REPO = path.resolve(__dirname, "../..");
const PROGRAM = path.join(REPO, "index.ts");

export interface Recorded {
  type: string;
  name: string;
  /** Inputs as plain values, secrets unwrapped. */
  inputs: Record<string, any>;
  /** Paths of the inputs that reached the engine marked secret, e.g. "value" or "tags.Owner". */
  secretPaths: string[];
  state: Record<string, any>;
}

/** Unwraps the engine's secret envelopes, noting where each was. */
function unwrapSecrets(v: any, path: string, found: string[]): any {
  if (Array.isArray(v)) return v.map((x, i) => unwrapSecrets(x, `${path}[${i}]`, found));
  if (v && typeof v === "object") {
    if (v[pulumi.runtime.specialSigKey] === pulumi.runtime.specialSecretSig) {
      found.push(path);
      return unwrapSecrets(v.value, path, found);
    }
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, unwrapSecrets(x, path ? `${path}.${k}` : k, found)]));
  }
  return v;
}

export interface Constructed {
  type: string;
  name: string;
  resource: pulumi.Resource;
  props: Record<string, any>;
  opts: pulumi.CustomResourceOptions;
}

const short = (s: string) => createHash("sha256").update(s).digest("hex").slice(0, 7);

/**
 * What AWS would answer, kept across runs so that successive `pulumi up`s behave like AWS:
 * an SSM parameter's version and a launch template's latest version go up when their inputs change.
 */
export class FakeAws {
  private versions = new Map<string, { digest: string; version: number }>();
  /** Every resource any run has registered. */
  readonly created: Recorded[] = [];
  /**
   * Where the program's own AWS calls go (the subnet and image checks it makes with the SDK before
   * declaring anything): a moto server, whose network and image the stack config must name.
   */
  ec2Endpoint?: string;
  /** Who `pulumi up` runs as: aws:getCallerIdentity's ARN. */
  callerArn = `arn:aws:sts::${ACCOUNT}:assumed-role/Deployer/alice`;

  constructor(readonly region = "ap-northeast-1") {}

  versionOf(key: string, inputs: unknown): number {
    const digest = short(JSON.stringify(inputs));
    const seen = this.versions.get(key);
    const version = !seen ? 1 : seen.digest === digest ? seen.version : seen.version + 1;
    this.versions.set(key, { digest, version });
    return version;
  }
}

class Recorder implements pulumi.runtime.Mocks {
  readonly resources: Recorded[] = [];

  constructor(private aws: FakeAws) {}

  newResource(args: pulumi.runtime.MockResourceArgs): { id: string; state: Record<string, any> } {
    const { type, name } = args;
    const secretPaths: string[] = [];
    const inputs = unwrapSecrets(args.inputs, "", secretPaths);
    const region = this.aws.region;
    const physical: string = inputs.name ?? `${name}-${short(name)}`;
    const service = type.split(":")[1].split("/")[0];
    // Like the engine, state keeps the secret envelopes the inputs came with.
    const state: Record<string, any> = { ...args.inputs, name: physical, arn: `arn:aws:${service}:${region}:${ACCOUNT}:${physical}` };
    let id = `${physical}-id`;

    switch (type) {
      case "aws:sqs/queue:Queue":
        state.url = `https://sqs.${region}.amazonaws.com/${ACCOUNT}/${physical}`;
        state.arn = `arn:aws:sqs:${region}:${ACCOUNT}:${physical}`;
        id = state.url;
        break;
      case "aws:ssm/parameter:Parameter":
        state.version = this.aws.versionOf(`ssm:${physical}`, [inputs.type, inputs.value]);
        state.arn = `arn:aws:ssm:${region}:${ACCOUNT}:parameter${physical}`;
        break;
      case "aws:ec2/launchTemplate:LaunchTemplate":
        id = `lt-${short(name)}0123456789`;
        state.latestVersion = this.aws.versionOf(`lt:${name}`, inputs);
        state.defaultVersion = state.latestVersion;
        break;
      case "aws:ec2/securityGroup:SecurityGroup":
        id = `sg-${short(name)}0123456789`;
        break;
      case "aws:iam/role:Role":
        state.arn = `arn:aws:iam::${ACCOUNT}:role/${physical}`;
        break;
      case "aws:iam/instanceProfile:InstanceProfile":
        state.arn = `arn:aws:iam::${ACCOUNT}:instance-profile/${physical}`;
        break;
      case "aws:cloudwatch/logGroup:LogGroup":
        state.arn = `arn:aws:logs:${region}:${ACCOUNT}:log-group:${physical}`;
        break;
      case "aws:kms/key:Key":
        state.keyId = `${short(name)}-0000-4000-8000-000000000000`;
        state.arn = `arn:aws:kms:${region}:${ACCOUNT}:key/${state.keyId}`;
        id = state.keyId;
        break;
      case "aws:sns/topic:Topic":
        state.arn = `arn:aws:sns:${region}:${ACCOUNT}:${physical}`;
        id = state.arn;
        break;
      case "aws:ec2/vpcEndpoint:VpcEndpoint":
        id = `vpce-${short(name)}0123456789`;
        break;
      case "aws:cloudwatch/metricAlarm:MetricAlarm":
        state.arn = `arn:aws:cloudwatch:${region}:${ACCOUNT}:alarm:${physical}`;
        break;
      case "aws:autoscaling/group:Group":
        id = physical;
        state.arn = `arn:aws:autoscaling:${region}:${ACCOUNT}:autoScalingGroup:0000:autoScalingGroupName/${physical}`;
        break;
    }
    const recorded = { type, name, inputs, secretPaths, state };
    this.resources.push(recorded);
    this.aws.created.push(recorded);
    return { id, state };
  }

  call(args: pulumi.runtime.MockCallArgs): Record<string, any> {
    switch (args.token) {
      case "aws:index/getCallerIdentity:getCallerIdentity":
        return { accountId: ACCOUNT, arn: this.aws.callerArn, userId: "AROAEXAMPLE:alice", id: ACCOUNT };
      case "aws:iam/getSessionContext:getSessionContext": {
        // As AWS answers: an assumed-role session's issuer is its role; anything else is itself.
        const m = /^arn:aws:sts::(\d{12}):assumed-role\/([^/]+)\/(.+)$/.exec(args.inputs.arn);
        return m
          ? { arn: args.inputs.arn, issuerArn: `arn:aws:iam::${m[1]}:role/${m[2]}`, issuerName: m[2], sessionName: m[3], id: args.inputs.arn }
          : { arn: args.inputs.arn, issuerArn: args.inputs.arn, id: args.inputs.arn };
      }
      case "aws:index/getPartition:getPartition":
        return { partition: "aws", dnsSuffix: "amazonaws.com", id: "aws" };
      default:
        throw new Error(`the test mocks do not answer ${args.token}`);
    }
  }
}

export interface StackRun {
  resources: Recorded[];
  constructed: Constructed[];
  /** The program's exports: stack outputs as Outputs, to check secretness. */
  exports: Record<string, any>;
  /** The stack outputs as plain values. */
  outputs: Record<string, any>;
  ofType(type: string): Recorded[];
  one(type: string, nameIncludes?: string): Recorded;
}

/** The stack file's config as the Pulumi CLI would pass it. */
export function stackConfig(stack: string): { values: Record<string, string>; secretKeys: string[] } {
  const { raw } = readStackFile(REPO, stack);
  return { values: { ...raw.values }, secretKeys: [...raw.secretKeys] };
}

/** Runs index.ts for a stack against Pulumi's mocks, exactly as `pulumi up` would run it. */
export async function runStack(
  stack: string,
  config: { values: Record<string, string>; secretKeys?: string[] },
  aws = new FakeAws(),
): Promise<StackRun> {
  const recorder = new Recorder(aws);
  await pulumi.runtime.setMocks(recorder, "kiln", stack, false);
  pulumi.runtime.setAllConfig(config.values, config.secretKeys ?? []);
  const restore = pointSdkAt(aws.ec2Endpoint);

  const constructed: Constructed[] = [];
  let exports: Record<string, any> = {};
  const outputs = await pulumi.runtime.runInPulumiStack(async () => {
    pulumi.runtime.registerStackTransformation((a) => {
      constructed.push({ type: a.type, name: a.name, resource: a.resource, props: a.props, opts: a.opts });
      return undefined;
    });
    delete require.cache[require.resolve(PROGRAM)];
    // index.ts exports an async program, as Pulumi allows; its result is the stack outputs.
    const program = require(PROGRAM) as () => Promise<Record<string, any>>;
    try {
      exports = await program();
    } finally {
      restore();
    }
    return exports;
  });
  // The mocks answer asynchronously: wait until every registration has gone through.
  await (pulumi.runtime as unknown as { waitForRPCs(): Promise<void> }).waitForRPCs();

  const resources = recorder.resources;
  const ofType = (type: string) => resources.filter((r) => r.type === type);
  return {
    resources,
    constructed,
    exports,
    outputs: outputs ?? {},
    ofType,
    one(type, nameIncludes) {
      const found = ofType(type).filter((r) => !nameIncludes || r.name.includes(nameIncludes));
      if (found.length !== 1) {
        throw new Error(`expected one ${type}${nameIncludes ? ` named *${nameIncludes}*` : ""}, found ${found.length}`);
      }
      return found[0];
    },
  };
}

/** The SDK calls the program makes itself go to `endpoint`, with dummy credentials; returns the undo. */
function pointSdkAt(endpoint: string | undefined): () => void {
  const vars = { AWS_ENDPOINT_URL_EC2: endpoint, AWS_ACCESS_KEY_ID: "testing", AWS_SECRET_ACCESS_KEY: "testing", AWS_SESSION_TOKEN: undefined, AWS_PROFILE: undefined };
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  const set = (v: Record<string, string | undefined>) => {
    for (const [k, x] of Object.entries(v)) {
      if (x === undefined) delete process.env[k];
      else process.env[k] = x;
    }
  };
  // Without an endpoint, no test account exists: any SDK call fails at once instead of reaching AWS.
  set({ ...vars, AWS_ENDPOINT_URL_EC2: endpoint ?? "http://127.0.0.1:9" });
  return () => set(saved);
}

/** Resolves an Output in a test. */
export function valueOf<T>(o: pulumi.Output<T>): Promise<T> {
  return new Promise((resolve) => o.apply((v) => resolve(v)));
}
