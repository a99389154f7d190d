import {
  DescribeImagesCommand,
  DescribeInstancesCommand,
  DescribeLaunchTemplatesCommand,
  DescribeLaunchTemplateVersionsCommand,
  EC2Client,
  Filter,
  Image,
} from "@aws-sdk/client-ec2";
import { awsCall } from "./aws-errors";
import { StepError } from "./step";
import { deregisterImage, incompleteBecause, snapshotsOf } from "./steps/create-image";
import { MANAGED_BY, TAG, tagValue } from "./steps/tags";

const STEP = "prune";
/** EC2 takes at most 200 values per filter. */
const FILTER_VALUES = 200;

export interface PruneOptions {
  ec2: EC2Client;
  stack: string;
  /** The newest this many images of the stack stay. */
  keep: number;
  /** The image just baked (or reused): never pruned. */
  currentImageId?: string;
  /**
   * An image without kiln:complete this many minutes old was left by a bake that died (a bake ends
   * within its builder's lifetime): pruned. A younger one may be another bake's, still finishing.
   */
  incompleteAfterMinutes?: number;
  /** Milliseconds since the epoch; default Date.now. */
  now?: () => number;
  /** Works out what would go and says so, changing nothing. */
  dryRun?: boolean;
  log?: (line: string) => void;
}

export interface ImageSummary {
  imageId: string;
  name?: string;
  created?: string;
  state?: string;
  snapshotIds: string[];
}

export interface PruneReport {
  dryRun: boolean;
  /** Deregistered with their snapshots (with dryRun: what would be). */
  pruned: ImageSummary[];
  /** Kept, each with every reason it was kept. */
  spared: (ImageSummary & { reasons: string[] })[];
  /** Images or snapshots that would not go; the rest were still pruned. */
  failed: { imageId: string; error: StepError }[];
}

function summary(image: Image): ImageSummary {
  return { imageId: image.ImageId!, name: image.Name, created: image.CreationDate, state: image.State, snapshotIds: snapshotsOf(image) };
}

/** The stack's kiln images, newest first. */
export async function stackImages(ec2: EC2Client, stack: string, extra: Filter[] = [], step = STEP): Promise<Image[]> {
  const images: Image[] = [];
  let NextToken: string | undefined;
  do {
    const page = await awsCall(step, `listing the images of stack ${stack}`, () =>
      ec2.send(
        new DescribeImagesCommand({
          Owners: ["self"],
          Filters: [{ Name: `tag:${TAG.stack}`, Values: [stack] }, { Name: `tag:${TAG.managedBy}`, Values: [MANAGED_BY] }, ...extra],
          MaxResults: 1000,
          NextToken,
        }),
      ),
    );
    images.push(...(page.Images ?? []));
    NextToken = page.NextToken;
  } while (NextToken);
  // ISO 8601 timestamps sort as strings.
  return images.sort((a, b) => (b.CreationDate ?? "").localeCompare(a.CreationDate ?? ""));
}

/**
 * The newest complete image of the stack baked from the same content, to reuse instead of baking:
 * undefined when there is none. An available image a killed bake left (no kiln:complete tag, no
 * IMDSv2 requirement, untagged snapshots) is passed over, and `skipped` says why.
 */
export async function findImageByContentHash(
  ec2: EC2Client,
  stack: string,
  hash: string,
  skipped: (imageId: string, why: string) => void = () => undefined,
): Promise<Image | undefined> {
  const images = await stackImages(ec2, stack, [
    { Name: `tag:${TAG.contentHash}`, Values: [hash] },
    { Name: "state", Values: ["available"] },
  ], "reuse-image");
  for (const image of images) {
    const why = await incompleteBecause(ec2, "reuse-image", image);
    if (!why) return image;
    skipped(image.ImageId!, why);
  }
  return undefined;
}

/**
 * Image id → the launch templates whose latest or default version uses it. Older versions do not
 * count: Pulumi keeps every version of a template it updates, so counting them would keep every
 * image ever deployed and `keep` would bound nothing. What a rollback needs is the default version
 * (what the group launches, unless pinned to $Latest) and the latest (what the next deploy or refresh
 * uses); further back, bake again or keep more (kiln:bake.keep).
 */
async function launchTemplateUses(ec2: EC2Client): Promise<Map<string, string[]>> {
  const uses = new Map<string, string[]>();
  let NextToken: string | undefined;
  do {
    const page = await awsCall(STEP, "listing launch templates", () => ec2.send(new DescribeLaunchTemplatesCommand({ MaxResults: 200, NextToken })));
    for (const lt of page.LaunchTemplates ?? []) {
      let VersionToken: string | undefined;
      do {
        const versions = await awsCall(STEP, `listing the latest and default versions of launch template ${lt.LaunchTemplateName}`, () =>
          ec2.send(new DescribeLaunchTemplateVersionsCommand({ LaunchTemplateId: lt.LaunchTemplateId, Versions: ["$Latest", "$Default"], NextToken: VersionToken })),
        );
        for (const v of versions.LaunchTemplateVersions ?? []) {
          const imageId = v.LaunchTemplateData?.ImageId;
          if (!imageId) continue;
          const where = `launch template ${lt.LaunchTemplateName} (${lt.LaunchTemplateId}) version ${v.VersionNumber}`;
          uses.set(imageId, [...(uses.get(imageId) ?? []), where]);
        }
        VersionToken = versions.NextToken;
      } while (VersionToken);
    }
    NextToken = page.NextToken;
  } while (NextToken);
  return uses;
}

/** Image id → instances (not terminated) running or holding it. */
async function instanceUses(ec2: EC2Client, imageIds: string[]): Promise<Map<string, string[]>> {
  const uses = new Map<string, string[]>();
  for (let i = 0; i < imageIds.length; i += FILTER_VALUES) {
    const chunk = imageIds.slice(i, i + FILTER_VALUES);
    let NextToken: string | undefined;
    do {
      const page = await awsCall(STEP, "looking for instances of the stack's images", () =>
        ec2.send(
          new DescribeInstancesCommand({
            Filters: [
              { Name: "image-id", Values: chunk },
              { Name: "instance-state-name", Values: ["pending", "running", "shutting-down", "stopping", "stopped"] },
            ],
            MaxResults: 1000,
            NextToken,
          }),
        ),
      );
      for (const inst of page.Reservations?.flatMap((r) => r.Instances ?? []) ?? []) {
        if (!inst.ImageId) continue;
        uses.set(inst.ImageId, [...(uses.get(inst.ImageId) ?? []), `instance ${inst.InstanceId} (${inst.State?.Name})`]);
      }
      NextToken = page.NextToken;
    } while (NextToken);
  }
  return uses;
}

/**
 * Deregisters the stack's old kiln images with their snapshots. Keeps the newest `keep` complete
 * ones, the current one, any still pending or incomplete and young (another bake's), and any that the
 * latest or default version of a launch template, or an instance not terminated, uses. So at most
 * keep + 2 × templates + instances' images stay, however many bakes and deploys there were.
 */
export async function pruneImages(opts: PruneOptions): Promise<PruneReport> {
  const { ec2, stack, keep, currentImageId } = opts;
  const dryRun = opts.dryRun ?? false;
  const report: PruneReport = { dryRun, pruned: [], spared: [], failed: [] };

  const images = await stackImages(ec2, stack);
  if (!images.length) return report;
  const complete = (i: Image) => i.State === "available" && tagValue(i.Tags, TAG.complete) === "true";
  const newest = new Set(images.filter(complete).slice(0, keep).map((i) => i.ImageId));
  const cutoff = (opts.now ?? Date.now)() - (opts.incompleteAfterMinutes ?? Infinity) * 60_000;
  const templates = await launchTemplateUses(ec2);
  const instances = await instanceUses(ec2, images.map((i) => i.ImageId!));

  const doomed: Image[] = [];
  for (const image of images) {
    const id = image.ImageId!;
    const reasons: string[] = [];
    if (id === currentImageId) reasons.push("the image of this bake");
    if (newest.has(id)) reasons.push(`one of the newest ${keep}`);
    if (image.State === "pending") reasons.push("still pending (another bake may be making it)");
    else if (image.State === "available" && !complete(image) && !(Date.parse(image.CreationDate ?? "") < cutoff)) reasons.push("incomplete but recent (another bake may be finishing it)");
    reasons.push(...(templates.get(id) ?? []).map((w) => `in ${w}`), ...(instances.get(id) ?? []).map((w) => `used by ${w}`));
    if (reasons.length) report.spared.push({ ...summary(image), reasons });
    else doomed.push(image);
  }

  // Oldest first: an interrupted prune leaves the newer ones.
  for (const image of doomed.reverse()) {
    const s = summary(image);
    if (dryRun) {
      report.pruned.push(s);
      opts.log?.(`would deregister ${s.imageId} (${s.name}, ${s.created}) and delete ${s.snapshotIds.join(", ") || "no snapshots"}`);
      continue;
    }
    try {
      const deleted = await deregisterImage(ec2, STEP, s.imageId, { snapshotIds: s.snapshotIds });
      report.pruned.push(s);
      opts.log?.(`deregistered ${s.imageId} (${s.name}, ${s.created}) and deleted ${deleted.join(", ") || "no snapshots"}`);
    } catch (e) {
      report.failed.push({ imageId: s.imageId, error: e as StepError });
      opts.log?.(`could not prune ${s.imageId}: ${(e as Error).message}`);
    }
  }
  for (const s of report.spared) opts.log?.(`kept ${s.imageId} (${s.name}): ${s.reasons.join("; ")}`);
  return report;
}
