import { EC2ServiceException, Filter, ImageState, InstanceStateName, IpPermission, Tag, TagSpecification } from "@aws-sdk/client-ec2";

/**
 * The fake EC2's state: plain records the handlers (ec2-compute.ts, ec2-images.ts) read and change,
 * and the EC2 semantics they share: ids, tags, filters, pagination and errors.
 */

export const FAKE_ACCOUNT = "123456789012";
export const AMAZON_OWNER = "137112412989";

/** An error shaped like the one EC2Client throws: EC2ServiceException, the code as `name`, the HTTP status. */
export function ec2Error(code: string, message: string, status = 400): Error {
  return new EC2ServiceException({ name: code, message, $fault: status >= 500 ? "server" : "client", $metadata: { httpStatusCode: status } });
}

export type Tags = Record<string, string>;

/** "The instance ID 'i-1' does not exist" / "The instance IDs 'i-1, i-2' do not exist". */
export function plural(missing: string[], one: string, many: string): string {
  return missing.length === 1 ? one.replace("%", missing[0]) : many.replace("%", missing.join(", "));
}

export interface FakeVpc {
  id: string;
  cidr: string;
  isDefault: boolean;
}

export interface FakeSubnet {
  id: string;
  vpcId: string;
  az: string;
  /** First three octets; instances get .10, .11, ... */
  prefix: string;
  mapPublicIp: boolean;
  tags: Tags;
  nextHost: number;
}

export interface FakeInstanceType {
  type: string;
  architectures: string[];
  vcpus: number;
  memoryMiB: number;
}

export interface FakeVolume {
  deviceName: string;
  volumeId: string;
  size: number;
  volumeType: string;
  encrypted: boolean;
  deleteOnTermination: boolean;
}

export interface FakeInstance {
  id: string;
  reservationId: string;
  imageId: string;
  type: string;
  subnetId: string;
  vpcId: string;
  az: string;
  securityGroupIds: string[];
  keyName?: string;
  state: InstanceStateName;
  launchTime: Date;
  tags: Tags;
  privateIp: string;
  publicIp?: string;
  /** Decoded user data. */
  userData?: string;
  metadataOptions: { HttpTokens: string; HttpEndpoint: string; HttpPutResponseHopLimit: number };
  rootDeviceName: string;
  volumes: FakeVolume[];
  shutdownBehavior: string;
  architecture: string;
  stateReason?: { Code: string; Message: string };
  /** DescribeInstances calls left in a transitional state (pending, stopping, shutting-down). */
  ticksLeft: number;
  /** DeleteSecurityGroup attempts its network interface still blocks once terminated. */
  eniLingers: number;
  /** Set on launch: the instance goes pending → terminated with this reason instead of running. */
  launchFailure?: { Code: string; Message: string };
  seeded: boolean;
  clientToken?: string;
}

export interface FakeImageDevice {
  deviceName: string;
  snapshotId?: string;
  size: number;
  volumeType: string;
  encrypted: boolean;
  deleteOnTermination: boolean;
}

export interface FakeImage {
  id: string;
  name: string;
  ownerId: string;
  ownerAlias?: string;
  public: boolean;
  state: ImageState;
  architecture: string;
  rootDeviceName: string;
  devices: FakeImageDevice[];
  creationDate: Date;
  tags: Tags;
  description?: string;
  imdsSupport?: string;
  stateReason?: { Code: string; Message: string };
  /** DescribeImages calls left pending. */
  ticksLeft: number;
  /** Set on creation: the image goes pending → failed with this reason. */
  failWith?: { Code: string; Message: string };
  sourceInstanceId?: string;
  seeded: boolean;
}

export interface FakeSnapshot {
  id: string;
  size: number;
  state: "pending" | "completed" | "error";
  encrypted: boolean;
  tags: Tags;
  ownerId: string;
  startTime: Date;
  description?: string;
  seeded: boolean;
}

export interface FakeKeyPair {
  id: string;
  name: string;
  type: string;
  fingerprint: string;
  publicKey: string;
  privateKey: string;
  createTime: Date;
  tags: Tags;
  seeded: boolean;
}

export interface FakeSecurityGroup {
  id: string;
  name: string;
  description: string;
  vpcId: string;
  ingress: IpPermission[];
  tags: Tags;
  isDefault: boolean;
  seeded: boolean;
}

export interface FakeLaunchTemplate {
  id: string;
  name: string;
  createTime: Date;
  defaultVersion: number;
  versions: { number: number; imageId?: string; createTime: Date }[];
  tags: Tags;
}

export interface FakeEc2Options {
  /** DescribeInstances calls an instance spends pending, stopping or shutting-down (Infinity: until settled). */
  instanceTicks: number;
  /** DescribeImages calls a new image spends pending. */
  imageTicks: number;
  /** DeleteSecurityGroup attempts a terminated instance's network interface still blocks. */
  eniLingerAttempts: number;
  /** Most items on one page of a paginated Describe, whatever MaxResults asks for. */
  pageSize: number;
  /** DescribeInstances / DescribeImages calls naming a new id that fail with NotFound (eventual consistency). */
  notFoundDescribes: number;
  /** The public address every running instance in a public subnet gets (say 127.0.0.1); default 203.0.113.x. */
  publicIp?: string;
}

export const INSTANCE_STATE_CODES: Record<InstanceStateName, number> = {
  pending: 0,
  running: 16,
  "shutting-down": 32,
  terminated: 48,
  stopping: 64,
  stopped: 80,
};

export function tagList(tags: Tags): Tag[] {
  return Object.entries(tags).map(([Key, Value]) => ({ Key, Value }));
}

/** Validates tags the way EC2 does and returns them as a record. */
export function checkTags(tags: Tag[] | undefined): Tags {
  const out: Tags = {};
  for (const t of tags ?? []) {
    if (!t.Key) throw ec2Error("InvalidParameterValue", "Tag key must not be empty");
    if (/^aws:/i.test(t.Key)) throw ec2Error("InvalidParameterValue", `Tag keys starting with 'aws:' are reserved for internal use (${t.Key})`);
    if (t.Key.length > 128) throw ec2Error("InvalidParameterValue", `Tag key exceeds the maximum length of 128 characters: ${t.Key}`);
    if ((t.Value ?? "").length > 256) throw ec2Error("InvalidParameterValue", `Tag value exceeds the maximum length of 256 characters (${t.Key})`);
    if (t.Key in out) throw ec2Error("InvalidParameterValue", `Duplicate tag key '${t.Key}'`);
    out[t.Key] = t.Value ?? "";
  }
  return out;
}

/** Tags per resource type from TagSpecifications, refusing types the operation cannot tag. */
export function tagSpecs(specs: TagSpecification[] | undefined, allowed: string[]): Record<string, Tags> {
  const out: Record<string, Tags> = {};
  for (const spec of specs ?? []) {
    const type = spec.ResourceType ?? "";
    if (!allowed.includes(type)) throw ec2Error("InvalidParameterValue", `'${type}' is not a valid taggable resource type for this operation.`);
    if (type in out) throw ec2Error("InvalidParameterValue", `The tag specification for resource type '${type}' is duplicated.`);
    out[type] = checkTags(spec.Tags);
  }
  return out;
}

export function mergeTags(target: Tags, add: Tags): void {
  Object.assign(target, add);
  if (Object.keys(target).length > 50) throw ec2Error("TagLimitExceeded", "The maximum number of tags per resource (50) has been exceeded");
}

function glob(pattern: string, value: string): boolean {
  const re = pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
  return new RegExp(`^${re}$`).test(value);
}

type FieldValue = string | number | boolean | undefined | (string | undefined)[];

/**
 * EC2 filter semantics: every filter must match, any of a filter's values may; `*` and `?` are
 * wildcards; `tag:Key`, `tag-key` and `tag-value` work on every resource; a filter name the resource
 * does not know fails as EC2 fails it.
 */
export function matchesFilters(filters: Filter[] | undefined, fields: Record<string, FieldValue>, tags: Tags): boolean {
  for (const f of filters ?? []) {
    const name = f.Name ?? "";
    const values = f.Values ?? [];
    let have: string[];
    if (name.startsWith("tag:")) {
      const v = tags[name.slice(4)];
      have = v === undefined ? [] : [v];
    } else if (name === "tag-key") {
      have = Object.keys(tags);
    } else if (name === "tag-value") {
      have = Object.values(tags);
    } else if (name in fields) {
      const v = fields[name];
      have = (Array.isArray(v) ? v : [v]).filter((x) => x !== undefined).map(String);
    } else {
      throw ec2Error("InvalidParameterValue", `The filter '${name}' is invalid`);
    }
    if (!have.some((h) => values.some((p) => glob(p, h)))) return false;
  }
  return true;
}

/** One page of `items`, as EC2's Describe calls page: MaxResults within limits, an opaque NextToken. */
export function paginate<T>(
  operation: string,
  items: T[],
  input: { MaxResults?: number; NextToken?: string },
  limits: { min: number; max: number; pageSize: number },
): { page: T[]; NextToken?: string } {
  if (input.MaxResults !== undefined && (input.MaxResults < limits.min || input.MaxResults > limits.max)) {
    throw ec2Error("InvalidParameterValue", `Value ( ${input.MaxResults} ) for parameter maxResults is invalid. Expecting a value from ${limits.min} to ${limits.max}.`);
  }
  let start = 0;
  if (input.NextToken !== undefined) {
    const m = /^(\w+):(\d+)$/.exec(Buffer.from(input.NextToken, "base64").toString());
    if (!m || m[1] !== operation) throw ec2Error("InvalidParameterValue", "The specified NextToken is not valid.");
    start = Number(m[2]);
  }
  const size = Math.min(input.MaxResults ?? Infinity, limits.pageSize);
  const page = items.slice(start, start + size);
  const next = start + size < items.length ? Buffer.from(`${operation}:${start + size}`).toString("base64") : undefined;
  return { page, NextToken: next };
}

/** EC2's id format: a prefix and 17 hex digits. */
export class IdMaker {
  private n = 0;
  next(prefix: string): string {
    this.n++;
    return `${prefix}-0${(0xa11ce00 + this.n).toString(16).padStart(16, "0")}`;
  }
}

export function ids<T>(map: Map<string, T>, wanted: string[] | undefined, notFound: (missing: string[]) => Error): T[] {
  if (!wanted?.length) return [...map.values()];
  const missing = wanted.filter((id) => !map.has(id));
  if (missing.length) throw notFound(missing);
  return [...new Set(wanted)].map((id) => map.get(id)!);
}
