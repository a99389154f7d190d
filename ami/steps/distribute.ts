import { CopyImageCommand, CreateTagsCommand, DescribeImagesCommand, EC2Client, ModifyImageAttributeCommand } from "@aws-sdk/client-ec2";
import { awsCall } from "../aws-errors";
import { unabortable } from "../call-signal";
import type { BakeState } from "../state";
import { Step, StepError } from "../step";
import { completeImage, deregisterImage, imageTags, incompleteBecause, waitForImage } from "./create-image";
import { MANAGED_BY, TAG, tagList, tagSpec } from "./tags";
import { DEFAULT_POLL_MS } from "./wait";

const NAME = "distribute";

/**
 * Packer's ami_regions and ami_users: a copy of the image in each of kiln:bake.copyRegions (encrypted
 * with that region's key from regionKmsKeyIds, when the image has a customer managed key), and launch
 * permission for each of kiln:bake.shareAccounts on the image and every copy. A complete copy made by an
 * earlier bake of the same content is reused; a copy that does not finish is deregistered by the cleanup.
 */
export const stepDistribute: Step<BakeState> = {
  name: NAME,
  title: "copy the image to other regions and share it",

  async run(state, ctx) {
    const s = state.settings;
    const source = state.reusedImageId ?? state.imageId;
    if (!source) throw new StepError(NAME, "there is no image to distribute", undefined, "create-image or reuse-image comes first");
    const regions = s.copyRegions ?? [];
    const accounts = s.shareAccounts ?? [];
    if (!regions.length && !accounts.length) {
      ctx.log("nothing to copy or share (kiln:bake.copyRegions, shareAccounts)");
      return;
    }
    state.copies ??= {};
    state.copiesDone ??= [];
    const tags = { ...imageTags(state), [TAG.sourceImage]: source };
    const client = (region: string) => {
      if (!state.clients.ec2In) throw new StepError(NAME, `no EC2 client for ${region}`, undefined, "pass clients.ec2In");
      return state.clients.ec2In(region);
    };

    for (const region of regions) {
      const ec2 = client(region);
      const existing = await completeCopy(ec2, state, region);
      if (existing) {
        state.copies[region] = existing;
        state.copiesDone.push(existing);
        ctx.log(`${region}: ${existing} is a complete copy of the same content already`);
        continue;
      }
      const kmsKeyId = s.kmsKeyId ? s.regionKmsKeyIds?.[region] : undefined;
      // Ctrl-C waits for the call that creates (call-signal.ts): the copy's id must come back to be deregistered.
      const out = await awsCall(NAME, `copying ${source} to ${region}`, () => unabortable(() =>
        ec2.send(
          new CopyImageCommand({
            SourceImageId: source,
            SourceRegion: s.region,
            Name: state.imageName,
            Description: `kiln worker for ${s.stack}, content ${state.contentHash ?? "unknown"}, copied from ${source} in ${s.region}`,
            // "You can encrypt a copy of an unencrypted snapshot, but you cannot create an unencrypted copy
            // of an encrypted snapshot": kiln's are encrypted, and so are their copies.
            Encrypted: true,
            ...(kmsKeyId ? { KmsKeyId: kmsKeyId } : {}),
            ClientToken: `kiln-${state.buildId}-${region}`.slice(0, 64),
            // Tagged on create, so the copy and its snapshots are never without kiln's tags: the bake's policy
            // (docs/bake.md) lets it tag, deregister and delete only images and snapshots that carry ManagedBy=kiln.
            TagSpecifications: [tagSpec("image", tags), tagSpec("snapshot", tags)],
          }),
        )),
      );
      if (!out.ImageId) throw new StepError(NAME, `CopyImage to ${region} returned no image id`, undefined, "bake again: the image is reused and copied again");
      state.copies[region] = out.ImageId;
      // Tagged again at once, before it is available, where tags on create were ignored (moto): a failed
      // bake's cleanup, or reap, finds the copy by build id.
      await awsCall(NAME, `tagging ${out.ImageId} in ${region}`, () => ec2.send(new CreateTagsCommand({ Resources: [out.ImageId!], Tags: tagList(tags) })));
      ctx.log(`${region}: copying to ${out.ImageId}${kmsKeyId ? ` (encrypted with ${kmsKeyId})` : ""}`);
      const image = await waitForImage(ec2, out.ImageId, {
        step: NAME,
        timeoutSeconds: s.imageTimeout,
        pollMs: s.pollMs ?? DEFAULT_POLL_MS,
        signal: ctx.signal,
        onRetry: ctx.log,
        timeoutHint: `the copy in ${region} is still pending: this bake deregisters it; bake again later (the image is reused and copied again)`,
      });
      await completeImage(ec2, NAME, image, tags);
      state.copiesDone.push(out.ImageId);
      ctx.log(`${region}: ${out.ImageId} available and complete`);
    }

    if (accounts.length) {
      const images = [{ region: s.region, ec2: state.clients.ec2, imageId: source }, ...Object.entries(state.copies).map(([region, imageId]) => ({ region, ec2: client(region), imageId }))];
      for (const { region, ec2, imageId } of images) {
        await awsCall(NAME, `sharing ${imageId} in ${region} with ${accounts.join(", ")}`, () =>
          ec2.send(new ModifyImageAttributeCommand({ ImageId: imageId, LaunchPermission: { Add: accounts.map((UserId) => ({ UserId })) } })),
        );
      }
      ctx.log(`shared ${images.map((i) => i.imageId).join(", ")} with ${accounts.join(", ")}; their key policy must let those accounts use ${s.kmsKeyId}`);
    }
  },

  async cleanup(state, ctx) {
    for (const [region, imageId] of Object.entries(state.copies ?? {})) {
      if (state.copiesDone?.includes(imageId)) continue;
      const deleted = await deregisterImage(state.clients.ec2In!(region), NAME, imageId, { buildId: state.buildId });
      ctx.log(`${region}: deregistered the unfinished copy ${imageId}${deleted.length ? ` and deleted ${deleted.join(", ")}` : ""}`);
    }
  },
};

/** A complete copy of this content in `region`, from an earlier bake, or undefined. */
async function completeCopy(ec2: EC2Client, state: BakeState, region: string): Promise<string | undefined> {
  const found = await awsCall(NAME, `looking for a copy in ${region}`, () =>
    ec2.send(
      new DescribeImagesCommand({
        Owners: ["self"],
        Filters: [
          { Name: `tag:${TAG.stack}`, Values: [state.settings.stack] },
          { Name: `tag:${TAG.managedBy}`, Values: [MANAGED_BY] },
          { Name: `tag:${TAG.contentHash}`, Values: [state.contentHash ?? ""] },
          { Name: `tag:${TAG.complete}`, Values: ["true"] },
          { Name: "state", Values: ["available"] },
        ],
      }),
    ),
  );
  for (const image of (found.Images ?? []).sort((a, b) => (b.CreationDate ?? "").localeCompare(a.CreationDate ?? ""))) {
    if (!(await incompleteBecause(ec2, NAME, image))) return image.ImageId;
  }
  return undefined;
}
