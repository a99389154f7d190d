import { DescribeImagesCommand, DescribeInstancesCommand, DescribeKeyPairsCommand, DescribeSecurityGroupsCommand, EC2Client, Filter, Image, Instance } from "@aws-sdk/client-ec2";
import type { IAMClient } from "@aws-sdk/client-iam";
import { awsCall } from "./aws-errors";
import { StepError } from "./step";
import { deregisterImage } from "./steps/create-image";
import { deleteKeyPair } from "./steps/key-pair";
import { builderProfiles, deleteBuilderProfile } from "./steps/instance-profile";
import { terminateInstance } from "./steps/run-builder";
import { deleteSecurityGroup } from "./steps/security-group";
import { MANAGED_BY, TAG, tagValue } from "./steps/tags";
import { DEFAULT_INSTANCE_TIMEOUT, DEFAULT_POLL_MS, WaitOptions } from "./steps/wait";

const STEP = "reap";

export interface ReapOptions {
  ec2: EC2Client;
  /** Also removes Session Manager's temporary roles and instance profiles of dead builds. */
  iam?: IAMClient;
  /** Builders launched longer ago than this are reaped: the bake's deadline (builderLifetimeMinutes). */
  olderThanMinutes: number;
  /** Only this stack's builders; default: every stack's. */
  stack?: string;
  /** Says what would go, changing nothing. */
  dryRun?: boolean;
  /** Milliseconds since the epoch; default Date.now. */
  now?: () => number;
  /** Waits for terminations and security groups: first poll interval (ms) and limit (s). */
  pollMs?: number;
  timeoutSeconds?: number;
  signal?: AbortSignal;
  log?: (line: string) => void;
}

export interface ReapReport {
  dryRun: boolean;
  instances: { instanceId: string; buildId?: string; stack?: string; launched?: string; state?: string }[];
  keyPairs: { name: string; id?: string; buildId?: string }[];
  securityGroups: { groupId: string; name?: string; buildId?: string }[];
  /** Images a killed bake left unfinished (no kiln:complete tag), past the deadline. */
  images: { imageId: string; name?: string; buildId?: string; state?: string }[];
  /** Session Manager's temporary instance profiles (and their roles) of dead builds. */
  profiles: { name: string; buildId?: string }[];
  /** Builder resources left alone, and why (a bake still within its deadline). */
  spared: { resource: string; buildId?: string; reason: string }[];
  /** What would not go; everything else was still reaped. */
  failed: { resource: string; error: StepError }[];
}

function builderFilters(stack: string | undefined): Filter[] {
  return [{ Name: `tag:${TAG.builder}`, Values: ["true"] }, ...(stack ? [{ Name: `tag:${TAG.stack}`, Values: [stack] }] : [])];
}

async function builderInstances(ec2: EC2Client, stack: string | undefined): Promise<Instance[]> {
  const instances: Instance[] = [];
  let NextToken: string | undefined;
  do {
    const page = await awsCall(STEP, "listing kiln builders", () =>
      ec2.send(
        new DescribeInstancesCommand({
          Filters: [...builderFilters(stack), { Name: "instance-state-name", Values: ["pending", "running", "stopping", "stopped", "shutting-down"] }],
          MaxResults: 1000,
          NextToken,
        }),
      ),
    );
    instances.push(...(page.Reservations?.flatMap((r) => r.Instances ?? []) ?? []));
    NextToken = page.NextToken;
  } while (NextToken);
  return instances;
}

/**
 * Removes what killed bakes left: kiln builders (tag kiln:builder=true) launched before the deadline,
 * and the key pairs and security groups of their builds (found by kiln:build-id). A build with a
 * builder or key pair younger than the deadline is a bake still running: all of it is spared. A
 * security group has no creation time, so an orphaned one goes when its build has nothing young.
 */
export async function reapBuilders(opts: ReapOptions): Promise<ReapReport> {
  const { ec2, stack } = opts;
  const dryRun = opts.dryRun ?? false;
  const cutoff = (opts.now ?? Date.now)() - opts.olderThanMinutes * 60_000;
  const deadline = `the ${opts.olderThanMinutes}-minute deadline`;
  const report: ReapReport = { dryRun, instances: [], keyPairs: [], securityGroups: [], images: [], profiles: [], spared: [], failed: [] };

  const instances = await builderInstances(ec2, stack);
  const keys =
    (await awsCall(STEP, "listing kiln key pairs", () => ec2.send(new DescribeKeyPairsCommand({ Filters: builderFilters(stack) })))).KeyPairs ?? [];
  const groups = [];
  let NextToken: string | undefined;
  do {
    const page = await awsCall(STEP, "listing kiln security groups", () =>
      ec2.send(new DescribeSecurityGroupsCommand({ Filters: builderFilters(stack), MaxResults: 1000, NextToken })),
    );
    groups.push(...(page.SecurityGroups ?? []));
    NextToken = page.NextToken;
  } while (NextToken);

  const young = new Set<string>();
  const old = (t: Date | undefined) => !t || t.getTime() < cutoff;
  for (const i of instances) {
    const buildId = tagValue(i.Tags, TAG.buildId);
    if (old(i.LaunchTime)) {
      report.instances.push({ instanceId: i.InstanceId!, buildId, stack: tagValue(i.Tags, TAG.stack), launched: i.LaunchTime?.toISOString(), state: i.State?.Name });
    } else {
      if (buildId) young.add(buildId);
      report.spared.push({ resource: i.InstanceId!, buildId, reason: `launched ${i.LaunchTime?.toISOString()}, within ${deadline}` });
    }
  }
  for (const k of keys) {
    const buildId = tagValue(k.Tags, TAG.buildId);
    if (buildId && !old(k.CreateTime)) young.add(buildId);
  }
  for (const k of keys) {
    const buildId = tagValue(k.Tags, TAG.buildId);
    if (old(k.CreateTime) && !(buildId && young.has(buildId))) report.keyPairs.push({ name: k.KeyName!, id: k.KeyPairId, buildId });
    else report.spared.push({ resource: k.KeyName!, buildId, reason: `its bake is within ${deadline}` });
  }
  for (const g of groups) {
    const buildId = tagValue(g.Tags, TAG.buildId);
    if (!buildId) report.spared.push({ resource: g.GroupId!, reason: `no ${TAG.buildId} tag` });
    else if (young.has(buildId)) report.spared.push({ resource: g.GroupId!, buildId, reason: `its bake is within ${deadline}` });
    else report.securityGroups.push({ groupId: g.GroupId!, name: g.GroupName, buildId });
  }

  for (const image of await unfinishedImages(ec2, stack)) {
    const buildId = tagValue(image.Tags, TAG.buildId);
    const created = image.CreationDate ? new Date(image.CreationDate) : undefined;
    if (!old(created) || (buildId && young.has(buildId))) report.spared.push({ resource: image.ImageId!, buildId, reason: `its bake is within ${deadline}` });
    else report.images.push({ imageId: image.ImageId!, name: image.Name, buildId, state: image.State });
  }
  if (opts.iam) {
    for (const p of await builderProfiles(opts.iam, STEP, stack)) {
      if (!old(p.created) || (p.buildId && young.has(p.buildId))) report.spared.push({ resource: p.name, buildId: p.buildId, reason: `its bake is within ${deadline}` });
      else report.profiles.push({ name: p.name, buildId: p.buildId });
    }
  }

  const what = [
    ...report.instances.map((i) => i.instanceId),
    ...report.keyPairs.map((k) => k.name),
    ...report.securityGroups.map((g) => g.groupId),
    ...report.images.map((i) => i.imageId),
    ...report.profiles.map((p) => p.name),
  ];
  if (dryRun) {
    opts.log?.(what.length ? `would reap ${what.join(", ")}` : "nothing to reap");
    return report;
  }

  const wait: WaitOptions = {
    step: STEP,
    timeoutSeconds: opts.timeoutSeconds ?? DEFAULT_INSTANCE_TIMEOUT,
    pollMs: opts.pollMs ?? DEFAULT_POLL_MS,
    signal: opts.signal,
  };
  const attempt = async (resource: string, action: () => Promise<void>) => {
    try {
      await action();
      opts.log?.(`reaped ${resource}`);
    } catch (e) {
      report.failed.push({ resource, error: e instanceof StepError ? e : new StepError(STEP, (e as Error).message) });
      opts.log?.(`could not reap ${resource}: ${(e as Error).message}`);
    }
  };
  // Sequential: each wait is short once the first termination is through, and the order keeps the log readable.
  for (const i of report.instances) await attempt(i.instanceId, () => terminateInstance(ec2, i.instanceId, wait));
  for (const k of report.keyPairs) await attempt(k.name, () => deleteKeyPair(ec2, STEP, k));
  for (const g of report.securityGroups) await attempt(g.groupId, () => deleteSecurityGroup(ec2, g.groupId, wait, opts.log));
  for (const i of report.images) await attempt(i.imageId, async () => void (await deregisterImage(ec2, STEP, i.imageId, { buildId: i.buildId })));
  for (const p of report.profiles) await attempt(p.name, () => deleteBuilderProfile(opts.iam!, STEP, p.name));
  return report;
}

/** Images kiln started (they carry a build id) that never got kiln:complete: a killed create-image's. */
async function unfinishedImages(ec2: EC2Client, stack: string | undefined): Promise<Image[]> {
  const out = await awsCall(STEP, "listing unfinished kiln images", () =>
    ec2.send(
      new DescribeImagesCommand({
        Owners: ["self"],
        Filters: [{ Name: "tag-key", Values: [TAG.buildId] }, { Name: `tag:${TAG.managedBy}`, Values: [MANAGED_BY] }, ...(stack ? [{ Name: `tag:${TAG.stack}`, Values: [stack] }] : [])],
      }),
    ),
  );
  return (out.Images ?? []).filter((i) => tagValue(i.Tags, TAG.complete) !== "true" && i.State !== "deregistered");
}
