import {
  CreateImageCommand,
  CreateTagsCommand,
  DeleteSnapshotCommand,
  DeregisterImageCommand,
  DescribeImagesCommand,
  DescribeSnapshotsCommand,
  EC2Client,
  Image,
  ModifyImageAttributeCommand,
  StopInstancesCommand,
} from "@aws-sdk/client-ec2";
import { awsCall, isAwsError } from "../aws-errors";
import { unabortable } from "../call-signal";
import type { BakeState } from "../state";
import { Step, StepError } from "../step";
import { MANAGED_BY, TAG, tagList, tagSpec, tagValue } from "./tags";
import { DEFAULT_POLL_MS, instanceWaitOptions, pollUntil, throwIfAborted, waitForInstance, WaitOptions } from "./wait";

const NAME = "create-image";

/** What identifies a kiln image: found by stack and content hash, pruned by stack. */
export function imageTags(state: BakeState): Record<string, string> {
  return {
    ...state.settings.tags,
    Name: state.imageName ?? "",
    [TAG.stack]: state.settings.stack,
    [TAG.contentHash]: state.contentHash ?? "",
    [TAG.gitCommit]: state.gitCommit ?? "",
    [TAG.baseImage]: state.baseImageId ?? "",
    [TAG.buildId]: state.buildId,
    [TAG.managedBy]: MANAGED_BY,
  };
}

/**
 * Stops the builder (a consistent file system, no reboot of a running one) and makes the image:
 * encrypted, tagged with what it was made from, IMDSv2 only. An image that does not become available
 * is deregistered with its snapshots by the cleanup: a half-made image must not stay.
 */
export const stepCreateImage: Step<BakeState> = {
  name: NAME,
  title: "create the image",

  async run(state, ctx) {
    const { ec2 } = state.clients;
    const s = state.settings;
    const { instanceId, imageName } = state;
    if (!instanceId || !imageName) throw new StepError(NAME, "there is no builder or no image name", undefined, "run run-builder first and set state.imageName");

    await awsCall(NAME, `stopping ${instanceId}`, () => ec2.send(new StopInstancesCommand({ InstanceIds: [instanceId] })));
    const stopped = await waitForInstance(ec2, instanceId, "stopped", {
      ...instanceWaitOptions(NAME, s, ctx.signal, ctx.log),
      dead: ["shutting-down", "terminated"],
      timeoutHint: `${instanceId} did not stop: check it in the EC2 console`,
    });
    ctx.log(`${instanceId} stopped`);

    const rootDeviceName = state.rootDeviceName ?? stopped?.RootDeviceName ?? "/dev/xvda";
    const tags = imageTags(state);
    throwIfAborted(NAME, ctx.signal, `creating image ${imageName}`);
    // Ctrl-C waits for the call that creates (call-signal.ts): the image id must come back to be deregistered.
    const created = await awsCall(NAME, `creating image ${imageName} from ${instanceId}`, () => unabortable(() =>
      ec2.send(
        new CreateImageCommand({
          InstanceId: instanceId,
          Name: imageName,
          Description: `kiln worker for ${s.stack}, content ${state.contentHash ?? "unknown"}`,
          BlockDeviceMappings: [
            { DeviceName: rootDeviceName, Ebs: { Encrypted: true, VolumeType: "gp3", VolumeSize: s.rootVolumeSize, DeleteOnTermination: true } },
          ],
          TagSpecifications: [tagSpec("image", tags), tagSpec("snapshot", tags)],
        }),
      )),
    );
    const imageId = created.ImageId;
    state.imageId = imageId;
    if (!imageId) throw new StepError(NAME, `CreateImage returned no id for ${imageName}`, undefined, "bake again");
    ctx.log(`${imageId} (${imageName}) pending`);

    const image = await waitForImage(ec2, imageId, {
      step: NAME,
      timeoutSeconds: s.imageTimeout,
      pollMs: s.pollMs ?? DEFAULT_POLL_MS,
      signal: ctx.signal,
      onRetry: ctx.log,
      timeoutHint: `${imageId} is still pending: snapshots of large volumes take long; this bake deregisters it, bake again later`,
    });

    state.snapshotIds = snapshotsOf(image);
    await completeImage(ec2, NAME, image, tags);
    state.imageDone = true;
    ctx.log(`${imageId} available and complete (snapshots ${state.snapshotIds.join(", ") || "none"})`);
  },

  async cleanup(state, ctx) {
    if (state.imageDone) return;
    const { ec2 } = state.clients;
    let imageId = state.imageId;
    if (!imageId) {
      // CreateImage may have gone through without its answer coming back: find the image by this build's tag.
      const found = await awsCall(NAME, "looking for an image of this build", () =>
        ec2.send(new DescribeImagesCommand({ Owners: ["self"], Filters: [{ Name: `tag:${TAG.buildId}`, Values: [state.buildId] }] })),
      );
      imageId = found.Images?.[0]?.ImageId;
    }
    if (!imageId) return;
    const deleted = await deregisterImage(ec2, NAME, imageId, { snapshotIds: state.snapshotIds, buildId: state.buildId });
    ctx.log(`deregistered the unfinished ${imageId}${deleted.length ? ` and deleted ${deleted.join(", ")}` : ""}`);
  },
};

/**
 * What makes an available image one kiln reuses: IMDSv2 required, every snapshot tagged (so prune and
 * reap find them), and last the kiln:complete tag. A bake killed before the end leaves an image without
 * that tag, which reuse passes over and prune and reap remove.
 */
export async function completeImage(ec2: EC2Client, step: string, image: Image, tags: Record<string, string>): Promise<void> {
  const imageId = image.ImageId!;
  await awsCall(step, `requiring IMDSv2 on ${imageId}`, () => ec2.send(new ModifyImageAttributeCommand({ ImageId: imageId, ImdsSupport: { Value: "v2.0" } })));
  const snapshotIds = snapshotsOf(image);
  if (snapshotIds.length) {
    const snaps = await awsCall(step, `looking up the snapshots of ${imageId}`, () => ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: snapshotIds })));
    const untagged = (snaps.Snapshots ?? []).filter((sn) => !sn.Tags?.some((t) => t.Key === TAG.stack)).map((sn) => sn.SnapshotId!);
    if (untagged.length) {
      await awsCall(step, `tagging snapshots ${untagged.join(", ")}`, () => ec2.send(new CreateTagsCommand({ Resources: untagged, Tags: tagList(tags) })));
    }
  }
  await awsCall(step, `marking ${imageId} complete`, () => ec2.send(new CreateTagsCommand({ Resources: [imageId], Tags: [{ Key: TAG.complete, Value: "true" }] })));
}

/** Why an image of kiln's is not one to reuse, or undefined when it is. */
export async function incompleteBecause(ec2: EC2Client, step: string, image: Image): Promise<string | undefined> {
  if (image.State !== "available") return `it is ${image.State}`;
  if (tagValue(image.Tags, TAG.complete) !== "true") return `it has no ${TAG.complete} tag: the bake that made it did not finish`;
  if (image.ImdsSupport !== "v2.0") return "it does not require IMDSv2 (ImdsSupport is not v2.0)";
  const snapshotIds = snapshotsOf(image);
  if (!snapshotIds.length) return "it lists no snapshots";
  const snaps = await awsCall(step, `looking up the snapshots of ${image.ImageId}`, () => ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: snapshotIds })));
  const untagged = (snaps.Snapshots ?? []).filter((sn) => !sn.Tags?.some((t) => t.Key === TAG.stack)).map((sn) => sn.SnapshotId);
  if (untagged.length) return `its snapshots ${untagged.join(", ")} are not tagged`;
  return undefined;
}

export function snapshotsOf(image: Image | undefined): string[] {
  return (image?.BlockDeviceMappings ?? []).map((m) => m.Ebs?.SnapshotId).filter((id): id is string => !!id);
}

const FAILED_STATES = new Set(["failed", "invalid", "error", "deregistered", "disabled"]);

/** Waits until an image is available; a failed one fails at once with AWS's reason. */
export async function waitForImage(
  ec2: EC2Client,
  imageId: string,
  opts: WaitOptions,
): Promise<Image> {
  return pollUntil(`image ${imageId} to be available`, opts, async () => {
    let image: Image | undefined;
    try {
      const out = await awsCall(opts.step, `looking up ${imageId}`, () => ec2.send(new DescribeImagesCommand({ ImageIds: [imageId] })));
      image = out.Images?.find((i) => i.ImageId === imageId);
    } catch (e) {
      // DescribeImages is eventually consistent: a new image may not be found at first.
      if (!isAwsError(e, "InvalidAMIID.NotFound")) throw e;
    }
    if (image?.State === "available") return image;
    if (image?.State && FAILED_STATES.has(image.State)) {
      throw new StepError(
        opts.step,
        `image ${imageId} ${image.State}${image.StateReason?.Message ? `: ${image.StateReason.Message}` : ""}`,
        image.StateReason?.Code ?? "ImageFailed",
        "see the state reason; bake again (this bake deregisters the failed image)",
      );
    }
    return undefined;
  });
}

/**
 * Deregisters an image, then deletes its snapshots: those it lists, those given, and (with a build id)
 * those tagged with the build, which a still-pending image may not list yet. Returns the snapshots
 * deleted. Anything already gone counts as done.
 */
export async function deregisterImage(
  ec2: EC2Client,
  step: string,
  imageId: string,
  opts: { snapshotIds?: string[]; buildId?: string } = {},
): Promise<string[]> {
  const snapshots = new Set(opts.snapshotIds ?? []);
  try {
    const out = await awsCall(step, `looking up ${imageId}`, () => ec2.send(new DescribeImagesCommand({ ImageIds: [imageId] })));
    for (const id of snapshotsOf(out.Images?.[0])) snapshots.add(id);
  } catch (e) {
    if (!isAwsError(e, "InvalidAMIID.NotFound")) throw e;
  }
  if (opts.buildId) {
    const tagged = await awsCall(step, `looking up the snapshots of build ${opts.buildId}`, () =>
      ec2.send(new DescribeSnapshotsCommand({ OwnerIds: ["self"], Filters: [{ Name: `tag:${TAG.buildId}`, Values: [opts.buildId!] }] })),
    );
    for (const sn of tagged.Snapshots ?? []) if (sn.SnapshotId) snapshots.add(sn.SnapshotId);
  }
  try {
    await awsCall(step, `deregistering ${imageId}`, () => ec2.send(new DeregisterImageCommand({ ImageId: imageId })), {
      UnauthorizedOperation: `deregister ${imageId} and delete its snapshots yourself (EC2 console → AMIs), or grant ec2:DeregisterImage`,
    });
  } catch (e) {
    if (!isAwsError(e, "InvalidAMIID.NotFound")) throw e;
  }
  const deleted: string[] = [];
  const failed: StepError[] = [];
  for (const id of snapshots) {
    try {
      await awsCall(step, `deleting snapshot ${id} of ${imageId}`, () => ec2.send(new DeleteSnapshotCommand({ SnapshotId: id })), {
        UnauthorizedOperation: `delete snapshot ${id} yourself (EC2 console → Snapshots), or grant ec2:DeleteSnapshot`,
      });
      deleted.push(id);
    } catch (e) {
      if (!isAwsError(e, "InvalidSnapshot.NotFound")) failed.push(e as StepError);
    }
  }
  // One snapshot that would not go does not keep the others.
  if (failed.length === 1) throw failed[0];
  if (failed.length) {
    throw new StepError(step, failed.map((f) => f.message).join("; "), failed[0].code, failed[0].hint);
  }
  return deleted;
}
