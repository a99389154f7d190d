import {
  AuthorizeSecurityGroupIngressCommand,
  CreateImageCommand,
  CreateKeyPairCommand,
  CreateSecurityGroupCommand,
  CreateTagsCommand,
  DeleteKeyPairCommand,
  DeleteSecurityGroupCommand,
  DeleteSnapshotCommand,
  DeregisterImageCommand,
  DescribeImagesCommand,
  DescribeInstancesCommand,
  DescribeInstanceTypesCommand,
  DescribeKeyPairsCommand,
  DescribeLaunchTemplatesCommand,
  DescribeLaunchTemplateVersionsCommand,
  DescribeRegionsCommand,
  DescribeSecurityGroupsCommand,
  DescribeSnapshotsCommand,
  DescribeSubnetsCommand,
  EC2Client,
  ModifyImageAttributeCommand,
  RunInstancesCommand,
  StopInstancesCommand,
  TerminateInstancesCommand,
} from "@aws-sdk/client-ec2";
import { GetParameterCommand, SSMClient } from "@aws-sdk/client-ssm";
import { AwsStub, mockClient } from "aws-sdk-client-mock";
import { ImageApi } from "./ec2-images";
import { InstanceApi } from "./ec2-instances";
import { FakeEc2Options, Tags } from "./ec2-model";
import { ResourceApi } from "./ec2-resources";
import { Ec2World } from "./ec2-world";
import { FAKE_REGION } from "./fake-aws";
import { InjectedFailures, serveCall } from "./injected-failures";

export { ec2Error, FAKE_ACCOUNT } from "./ec2-model";
export type { FakeEc2Options } from "./ec2-model";
export { AL2023_PARAMETER_PREFIX } from "./ec2-world";

const CLIENT_CONFIG = { region: FAKE_REGION, credentials: { accessKeyId: "test", secretAccessKey: "test" } };

export type Ec2FakeService = "ec2" | "ssm";

/** One call as the fake received it; `error` is set when it failed (injected or not). */
export interface Ec2Call {
  service: Ec2FakeService;
  operation: string;
  input: unknown;
  error?: Error;
}

/** What a bake must not leave behind. */
export interface Ec2Leftovers {
  /** Instances not terminated: launched through the API, or seeded as kiln builders. */
  instances: string[];
  keyPairs: string[];
  securityGroups: string[];
  /** Images made through the API that are not available: pending, failed. */
  images: string[];
  /** Snapshots made through the API that no available image uses. */
  snapshots: string[];
}

export const NO_LEFTOVERS: Readonly<Ec2Leftovers> = Object.freeze({ instances: [], keyPairs: [], securityGroups: [], images: [], snapshots: [] });


// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyStub = AwsStub<any, any, any>;
type CommandClass<I> = { name: string; new (input: I): { input: I } };

/**
 * A stateful EC2 (and SSM's GetParameter, for the public AMI parameters) behind real SDK v3 clients,
 * in the manner of FakeAws: code under test gets `fake.ec2` and `fake.ssm`. It holds a default VPC
 * with a public and a private subnet, instance types of both architectures and AL2023 images with
 * their public parameters; it validates what EC2 validates where it matters (ids, names, IMDS
 * options, block devices, tags, filters, pagination), fails like EC2 (name = code, $metadata), moves
 * instances and images through their states on Describe calls, keeps a security group busy while an
 * instance uses it, records every call, and fails any call on demand with `failNext`.
 */
export class FakeEc2 extends Ec2World {
  readonly ec2 = new EC2Client(CLIENT_CONFIG);
  readonly ssm = new SSMClient(CLIENT_CONFIG);
  /** Every call, in order. */
  readonly calls: Ec2Call[] = [];
  /**
   * Told of each call as it arrives, before it is served: a test can press Ctrl-C (abort) at the
   * n-th call, and the call still completes, as a request already sent to AWS does.
   */
  onCall?: (call: Ec2Call, index: number) => void;

  private readonly stubs: Record<Ec2FakeService, AnyStub>;
  private readonly failures = new InjectedFailures();
  /** The handlers behind the clients, to wrap in a test's own `handle` (a response lost after the work was done). */
  readonly resourceApi = new ResourceApi(this);
  readonly instanceApi = new InstanceApi(this);
  readonly imageApi = new ImageApi(this);

  constructor(options: Partial<FakeEc2Options> = {}) {
    super(FAKE_REGION, options);
    this.stubs = { ec2: mockClient(this.ec2), ssm: mockClient(this.ssm) };
    for (const [service, stub] of Object.entries(this.stubs)) {
      stub.onAnyCommand().callsFake((input: unknown) => {
        throw new Error(`fake ${service}: no handler for this command (${JSON.stringify(input)}); add one with FakeEc2.handle`);
      });
    }
    const c = this.resourceApi;
    const n = this.instanceApi;
    const i = this.imageApi;
    this.handle("ec2", DescribeRegionsCommand, (x) => c.describeRegions(x));
    this.handle("ec2", DescribeSubnetsCommand, (x) => c.describeSubnets(x));
    this.handle("ec2", DescribeInstanceTypesCommand, (x) => c.describeInstanceTypes(x));
    this.handle("ec2", CreateKeyPairCommand, (x) => c.createKeyPair(x));
    this.handle("ec2", DeleteKeyPairCommand, (x) => c.deleteKeyPair(x));
    this.handle("ec2", DescribeKeyPairsCommand, (x) => c.describeKeyPairs(x));
    this.handle("ec2", CreateSecurityGroupCommand, (x) => c.createSecurityGroup(x));
    this.handle("ec2", AuthorizeSecurityGroupIngressCommand, (x) => c.authorizeSecurityGroupIngress(x));
    this.handle("ec2", DescribeSecurityGroupsCommand, (x) => c.describeSecurityGroups(x));
    this.handle("ec2", DeleteSecurityGroupCommand, (x) => c.deleteSecurityGroup(x));
    this.handle("ec2", RunInstancesCommand, (x) => n.runInstances(x));
    this.handle("ec2", DescribeInstancesCommand, (x) => n.describeInstances(x));
    this.handle("ec2", StopInstancesCommand, (x) => n.stopInstances(x));
    this.handle("ec2", TerminateInstancesCommand, (x) => n.terminateInstances(x));
    this.handle("ec2", CreateTagsCommand, (x) => c.createTags(x));
    this.handle("ec2", CreateImageCommand, (x) => i.createImage(x));
    this.handle("ec2", DescribeImagesCommand, (x) => i.describeImages(x));
    this.handle("ec2", ModifyImageAttributeCommand, (x) => i.modifyImageAttribute(x));
    this.handle("ec2", DeregisterImageCommand, (x) => i.deregisterImage(x));
    this.handle("ec2", DescribeSnapshotsCommand, (x) => i.describeSnapshots(x));
    this.handle("ec2", DeleteSnapshotCommand, (x) => i.deleteSnapshot(x));
    this.handle("ec2", DescribeLaunchTemplatesCommand, (x) => i.describeLaunchTemplates(x));
    this.handle("ec2", DescribeLaunchTemplateVersionsCommand, (x) => i.describeLaunchTemplateVersions(x));
    this.handle("ssm", GetParameterCommand, (x) => i.getParameter(x));
  }

  /** Serves `command` on `service`'s client: through failure injection, recorded in `calls`. */
  handle<I>(service: Ec2FakeService, command: CommandClass<I>, handler: (input: I) => object | Promise<object>): void {
    const operation = command.name.replace(/Command$/, "");
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    this.stubs[service].on(command as any).callsFake((input: I) =>
      serveCall<Ec2Call>(this.calls, this.failures, { service, operation, input }, () => handler(input), this.onCall),
    );
  }

  /**
   * The next `times` calls of `operation` (Infinity: every one) throw `error` instead of being served,
   * after letting `skip` calls through. Build the error with `ec2Error(code, message)`.
   */
  failNext(operation: string, error: Error, times = 1, skip = 0): void {
    this.failures.add(operation, error, times, skip);
  }

  /** Drops failures injected and not yet thrown. */
  clearFailures(): void {
    this.failures.clear();
  }

  /** The inputs `operation` was called with, failed calls included. */
  inputs<I = unknown>(operation: string): I[] {
    return this.calls.filter((c) => c.operation === operation).map((c) => c.input as I);
  }

  /** Operation names in call order. */
  operations(): string[] {
    return this.calls.map((c) => c.operation);
  }

  /** Calls that change something (anything but Describe* and Get*), failed ones included. */
  mutations(): Ec2Call[] {
    return this.calls.filter((c) => !/^(Describe|Get)/.test(c.operation));
  }

  /** What is still out there that a bake made: see Ec2Leftovers. Compare with NO_LEFTOVERS. */
  leftovers(): Ec2Leftovers {
    const kiln = (r: { seeded: boolean; tags: Tags }) => !r.seeded || r.tags["kiln:builder"] === "true";
    return {
      instances: [...this.instances.values()].filter((i) => i.state !== "terminated" && kiln(i)).map((i) => i.id),
      keyPairs: [...this.keyPairs.values()].filter(kiln).map((k) => k.name),
      securityGroups: [...this.securityGroups.values()].filter((g) => !g.isDefault && kiln(g)).map((g) => g.id),
      images: [...this.images.values()].filter((im) => !im.seeded && im.state !== "available").map((im) => im.id),
      snapshots: [...this.snapshots.values()]
        .filter((s) => !s.seeded && !this.imagesUsing(s.id).some((im) => im.state === "available"))
        .map((s) => s.id),
    };
  }

  restore(): void {
    for (const stub of Object.values(this.stubs)) stub.restore();
    this.ec2.destroy();
    this.ssm.destroy();
  }
}
