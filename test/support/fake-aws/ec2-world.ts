import { ImageState, InstanceStateName } from "@aws-sdk/client-ec2";
import {
  AMAZON_OWNER,
  FAKE_ACCOUNT,
  FakeEc2Options,
  FakeImage,
  FakeInstance,
  FakeInstanceType,
  FakeKeyPair,
  FakeLaunchTemplate,
  FakeSecurityGroup,
  FakeSnapshot,
  FakeSubnet,
  FakeVpc,
  IdMaker,
  Tags,
} from "./ec2-model";
import { ed25519Key } from "./ec2-keys";

const TRANSITIONS: Partial<Record<InstanceStateName, InstanceStateName>> = {
  pending: "running",
  stopping: "stopped",
  "shutting-down": "terminated",
};

export const AL2023_PARAMETER_PREFIX = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-";

/**
 * What the fake EC2 holds, how its resources move through their states, and the seeding helpers
 * tests use to set up an account. Everything is public: a test may look at or change any of it.
 * Transitional states advance on Describe calls (each DescribeInstances call is one tick for every
 * instance, each DescribeImages call for every image), or all at once with `settle()`.
 */
export class Ec2World {
  readonly account = FAKE_ACCOUNT;
  readonly idMaker = new IdMaker();
  readonly options: FakeEc2Options;
  /** The fake's clock: launch, creation and key pair times. */
  now: () => Date = () => new Date();

  readonly regions: { name: string; optIn: "opt-in-not-required" | "opted-in" | "not-opted-in" }[];
  readonly vpcs = new Map<string, FakeVpc>();
  readonly subnets = new Map<string, FakeSubnet>();
  readonly instanceTypes = new Map<string, FakeInstanceType>();
  readonly instances = new Map<string, FakeInstance>();
  readonly images = new Map<string, FakeImage>();
  readonly snapshots = new Map<string, FakeSnapshot>();
  /** By key pair id. */
  readonly keyPairs = new Map<string, FakeKeyPair>();
  readonly securityGroups = new Map<string, FakeSecurityGroup>();
  readonly launchTemplates = new Map<string, FakeLaunchTemplate>();
  /** SSM parameters GetParameter serves: the public ones (AL2023's latest image per architecture). */
  readonly parameters = new Map<string, string>();
  /** Ids of images deregistered so far, in order. */
  readonly deregistered: string[] = [];
  /** New id → Describe calls by id still answered with NotFound. */
  readonly unseen = new Map<string, number>();
  readonly clientTokens = new Map<string, string[]>();
  nextLaunchFailure?: { Code: string; Message: string };
  nextImageFailure?: { Code: string; Message: string };

  readonly defaultVpcId: string;
  /** A subnet that gives instances a public address, and one that does not. */
  readonly publicSubnetId: string;
  readonly privateSubnetId: string;
  /** The AMIs AL2023's public parameters name. */
  readonly al2023: { x86_64: string; arm64: string };

  constructor(
    readonly region: string,
    options: Partial<FakeEc2Options> = {},
  ) {
    this.options = { instanceTicks: 1, imageTicks: 2, eniLingerAttempts: 0, pageSize: 1000, notFoundDescribes: 0, ...options };
    this.regions = [
      { name: "us-east-1", optIn: "opt-in-not-required" },
      { name: "eu-west-1", optIn: "opt-in-not-required" },
      { name: "ap-northeast-1", optIn: "opt-in-not-required" },
      { name: "af-south-1", optIn: "not-opted-in" },
    ];
    if (!this.regions.some((r) => r.name === region)) this.regions.push({ name: region, optIn: "opt-in-not-required" });

    for (const [type, architectures, vcpus, memoryMiB] of [
      ["t3.micro", ["x86_64"], 2, 1024],
      ["t3.medium", ["x86_64"], 2, 4096],
      ["t2.micro", ["i386", "x86_64"], 1, 1024],
      ["c6i.large", ["x86_64"], 2, 4096],
      ["t4g.medium", ["arm64"], 2, 4096],
      ["m7g.large", ["arm64"], 2, 8192],
      ["mac2.metal", ["arm64_mac"], 12, 16384],
    ] as const) {
      this.instanceTypes.set(type, { type, architectures: [...architectures], vcpus, memoryMiB });
    }

    this.defaultVpcId = this.addVpc("172.31.0.0/16", true);
    this.publicSubnetId = this.addSubnet({ vpcId: this.defaultVpcId, mapPublicIp: true });
    this.privateSubnetId = this.addSubnet({ vpcId: this.defaultVpcId, mapPublicIp: false, az: `${region}c` });
    const created = new Date("2026-01-01T00:00:00.000Z");
    this.al2023 = {
      x86_64: this.addImage({ name: "al2023-ami-2023.9.20260101.0-kernel-6.1-x86_64", owner: "amazon", architecture: "x86_64", created }),
      arm64: this.addImage({ name: "al2023-ami-2023.9.20260101.0-kernel-6.1-arm64", owner: "amazon", architecture: "arm64", created }),
    };
    this.parameters.set(`${AL2023_PARAMETER_PREFIX}x86_64`, this.al2023.x86_64);
    this.parameters.set(`${AL2023_PARAMETER_PREFIX}arm64`, this.al2023.arm64);
  }

  // ---- seeding ----

  addVpc(cidr = "10.0.0.0/16", isDefault = false): string {
    const id = this.idMaker.next("vpc");
    this.vpcs.set(id, { id, cidr, isDefault });
    // Every VPC comes with its default security group.
    const sg = this.idMaker.next("sg");
    this.securityGroups.set(sg, { id: sg, name: "default", description: "default VPC security group", vpcId: id, ingress: [], tags: {}, isDefault: true, seeded: true });
    return id;
  }

  addSubnet(opts: { vpcId?: string; az?: string; mapPublicIp?: boolean; tags?: Tags } = {}): string {
    const id = this.idMaker.next("subnet");
    const n = this.subnets.size;
    this.subnets.set(id, {
      id,
      vpcId: opts.vpcId ?? this.defaultVpcId,
      az: opts.az ?? `${this.region}a`,
      prefix: `172.31.${16 * n}`,
      mapPublicIp: opts.mapPublicIp ?? true,
      tags: opts.tags ?? {},
      nextHost: 10,
    });
    return id;
  }

  /** An image with one root snapshot; `owner` "self" for the account's own images. A pending one stays so until settle(). */
  addImage(opts: {
    name: string;
    owner?: "self" | "amazon";
    architecture?: string;
    state?: ImageState;
    tags?: Tags;
    created?: Date;
    rootSize?: number;
    rootDeviceName?: string;
    /** Default: v2.0 for someone else's, unset for one of ours unless it is tagged kiln:complete (as a finished bake leaves it). */
    imdsSupport?: string;
  }): string {
    const id = this.idMaker.next("ami");
    const self = (opts.owner ?? "self") === "self";
    const rootDeviceName = opts.rootDeviceName ?? "/dev/xvda";
    const snap = this.addSnapshot({ size: opts.rootSize ?? 8, tags: self ? { ...(opts.tags ?? {}) } : {}, owner: self ? "self" : "amazon", encrypted: self });
    this.images.set(id, {
      id,
      name: opts.name,
      ownerId: self ? this.account : AMAZON_OWNER,
      ownerAlias: self ? undefined : "amazon",
      public: !self,
      state: opts.state ?? "available",
      architecture: opts.architecture ?? "x86_64",
      rootDeviceName,
      devices: [{ deviceName: rootDeviceName, snapshotId: snap, size: opts.rootSize ?? 8, volumeType: "gp3", encrypted: self, deleteOnTermination: true }],
      creationDate: opts.created ?? this.now(),
      tags: opts.tags ?? {},
      imdsSupport: opts.imdsSupport ?? (!self || opts.tags?.["kiln:complete"] === "true" ? "v2.0" : undefined),
      // Someone else's image being made: it stays pending until settle().
      ticksLeft: Infinity,
      seeded: true,
    });
    return id;
  }

  addSnapshot(opts: { size?: number; tags?: Tags; owner?: "self" | "amazon"; encrypted?: boolean; seeded?: boolean; state?: FakeSnapshot["state"] } = {}): string {
    const id = this.idMaker.next("snap");
    this.snapshots.set(id, {
      id,
      size: opts.size ?? 8,
      state: opts.state ?? "completed",
      encrypted: opts.encrypted ?? true,
      tags: opts.tags ?? {},
      ownerId: (opts.owner ?? "self") === "self" ? this.account : AMAZON_OWNER,
      startTime: this.now(),
      seeded: opts.seeded ?? true,
    });
    return id;
  }

  /** An instance already there (a worker of the fleet, a builder a killed bake left). */
  addInstance(opts: {
    imageId: string;
    state?: InstanceStateName;
    tags?: Tags;
    launchTime?: Date;
    subnetId?: string;
    securityGroupIds?: string[];
    keyName?: string;
    type?: string;
  }): string {
    const id = this.idMaker.next("i");
    const subnet = this.subnets.get(opts.subnetId ?? this.publicSubnetId)!;
    const image = this.images.get(opts.imageId);
    this.instances.set(id, {
      id,
      reservationId: this.idMaker.next("r"),
      imageId: opts.imageId,
      type: opts.type ?? "t3.medium",
      subnetId: subnet.id,
      vpcId: subnet.vpcId,
      az: subnet.az,
      securityGroupIds: opts.securityGroupIds ?? [],
      keyName: opts.keyName,
      state: opts.state ?? "running",
      launchTime: opts.launchTime ?? this.now(),
      tags: opts.tags ?? {},
      privateIp: `${subnet.prefix}.${subnet.nextHost++}`,
      metadataOptions: { HttpTokens: "required", HttpEndpoint: "enabled", HttpPutResponseHopLimit: 2 },
      rootDeviceName: image?.rootDeviceName ?? "/dev/xvda",
      volumes: [],
      shutdownBehavior: "stop",
      architecture: image?.architecture ?? "x86_64",
      ticksLeft: this.options.instanceTicks,
      eniLingers: 0,
      seeded: true,
    });
    return id;
  }

  addKeyPair(opts: { name: string; tags?: Tags; createTime?: Date }): FakeKeyPair {
    const key = ed25519Key(opts.name);
    const k: FakeKeyPair = {
      id: this.idMaker.next("key"),
      name: opts.name,
      type: "ed25519",
      ...key,
      createTime: opts.createTime ?? this.now(),
      tags: opts.tags ?? {},
      seeded: true,
    };
    this.keyPairs.set(k.id, k);
    return k;
  }

  addSecurityGroup(opts: { name: string; vpcId?: string; tags?: Tags }): string {
    const id = this.idMaker.next("sg");
    this.securityGroups.set(id, { id, name: opts.name, description: opts.name, vpcId: opts.vpcId ?? this.defaultVpcId, ingress: [], tags: opts.tags ?? {}, isDefault: false, seeded: true });
    return id;
  }

  /** A launch template with one version per entry (undefined: a version without an image). */
  addLaunchTemplate(name: string, imageIds: (string | undefined)[], tags: Tags = {}): string {
    const id = this.idMaker.next("lt");
    const createTime = this.now();
    this.launchTemplates.set(id, { id, name, createTime, defaultVersion: 1, versions: imageIds.map((imageId, i) => ({ number: i + 1, imageId, createTime })), tags });
    return id;
  }

  addLaunchTemplateVersion(templateId: string, imageId?: string): number {
    const lt = this.launchTemplates.get(templateId)!;
    const number = lt.versions.length + 1;
    lt.versions.push({ number, imageId, createTime: this.now() });
    return number;
  }

  /** The next instance RunInstances launches ends terminated with this reason instead of running. */
  failNextLaunch(Code = "Server.InsufficientInstanceCapacity", Message = "Insufficient capacity."): void {
    this.nextLaunchFailure = { Code, Message };
  }

  /** The next image CreateImage makes ends failed with this reason instead of available. */
  failNextImage(Code = "Client.SnapshotCreationFailed", Message = "Snapshot creation failed."): void {
    this.nextImageFailure = { Code, Message };
  }

  // ---- state machine ----

  setInstanceState(i: FakeInstance, state: InstanceStateName): void {
    i.state = state;
    i.ticksLeft = this.options.instanceTicks;
    if (state === "running" && this.subnets.get(i.subnetId)?.mapPublicIp) {
      i.publicIp = this.options.publicIp ?? `203.0.113.${(Number(i.privateIp.split(".")[3]) % 250) + 1}`;
    }
    if (state === "stopped" || state === "terminated") i.publicIp = undefined;
    if (state === "stopped") i.stateReason = { Code: "Client.UserInitiatedShutdown", Message: "Client.UserInitiatedShutdown: User initiated shutdown" };
    if (state === "terminated") {
      i.eniLingers = this.options.eniLingerAttempts;
      i.stateReason ??= { Code: "Client.UserInitiatedShutdown", Message: "Client.UserInitiatedShutdown: User initiated shutdown" };
    }
  }

  private advanceInstance(i: FakeInstance): void {
    if (i.state === "pending" && i.launchFailure) {
      i.stateReason = i.launchFailure;
      return this.setInstanceState(i, "terminated");
    }
    const next = TRANSITIONS[i.state];
    if (next) this.setInstanceState(i, next);
  }

  private advanceImage(image: FakeImage): void {
    if (image.state !== "pending") return;
    if (image.failWith) {
      image.state = "failed";
      image.stateReason = image.failWith;
    } else {
      image.state = "available";
    }
    for (const d of image.devices) {
      const snap = d.snapshotId ? this.snapshots.get(d.snapshotId) : undefined;
      if (snap && snap.state === "pending") snap.state = image.failWith ? "error" : "completed";
    }
  }

  tickInstances(): void {
    for (const i of this.instances.values()) {
      if (!TRANSITIONS[i.state]) continue;
      if (--i.ticksLeft <= 0) this.advanceInstance(i);
    }
  }

  tickImages(): void {
    for (const image of this.images.values()) {
      if (image.state === "pending" && --image.ticksLeft <= 0) this.advanceImage(image);
    }
  }

  /** Every instance and image in a transitional state reaches where it is going; ENIs are released. */
  settle(): void {
    for (const i of this.instances.values()) this.advanceInstance(i);
    for (const i of this.instances.values()) i.eniLingers = 0;
    for (const image of this.images.values()) this.advanceImage(image);
  }

  /** Counts a Describe by id of a new resource against eventual consistency: true while still unseen. */
  stillUnseen(id: string): boolean {
    const left = this.unseen.get(id) ?? 0;
    if (left <= 0) return false;
    this.unseen.set(id, left - 1);
    return true;
  }

  keyPairByName(name: string): FakeKeyPair | undefined {
    return [...this.keyPairs.values()].find((k) => k.name === name);
  }

  /** Registered images (any state) that use the snapshot. */
  imagesUsing(snapshotId: string): FakeImage[] {
    return [...this.images.values()].filter((im) => im.devices.some((d) => d.snapshotId === snapshotId));
  }
}
