import * as path from "node:path";
import type { BakeOptions } from "./bake";
import { pruneImages } from "./prune";
import { BakeManifest, recordAmiId, writeManifest } from "./publish";
import type { StepRecord } from "./runner";
import type { BakeState } from "./state";
import { Step } from "./step";
import { stepDistribute } from "./steps/distribute";

/**
 * What follows a complete image, baked or reused: copies and shares (distribute), the stack file
 * (publish), old images (prune). A reused image goes through them too, so a region or account added
 * to kiln:bake since the last bake is served without baking again.
 */
export function finishSteps(opts: BakeOptions): Step<BakeState>[] {
  return [stepDistribute, publishStep(opts), pruneStep];
}

function imageOf(state: BakeState): string {
  const id = state.reusedImageId ?? state.imageId;
  if (!id) throw new Error("no image to finish: the bake made none");
  return id;
}

function publishStep(opts: BakeOptions): Step<BakeState> {
  return {
    name: "publish",
    title: `record the image in Pulumi.${opts.stack}.yaml`,
    async run(state, ctx) {
      const imageId = imageOf(state);
      const { previous } = recordAmiId(opts.stackDir ?? opts.root, opts.stack, imageId);
      ctx.log(`kiln:amiId ${previous ?? "(unset)"} -> ${imageId}`);
    },
  };
}

/** Prunes in the stack's region and in every region the image is copied to. */
const pruneStep: Step<BakeState> = {
  name: "prune",
  title: "prune old images of the stack",
  async run(state, ctx) {
    const s = state.settings;
    const regions = [{ region: s.region, ec2: state.clients.ec2, current: imageOf(state) }];
    for (const [region, copy] of Object.entries(state.copies ?? {})) {
      regions.push({ region, ec2: state.clients.ec2In!(region), current: copy });
    }
    const failures = [];
    for (const r of regions) {
      const report = await pruneImages({
        ec2: r.ec2,
        stack: s.stack,
        keep: s.keep,
        currentImageId: r.current,
        incompleteAfterMinutes: s.builderLifetimeMinutes,
        log: (line) => ctx.log(regions.length > 1 ? `${r.region}: ${line}` : line),
      });
      ctx.log(`${regions.length > 1 ? `${r.region}: ` : ""}pruned ${report.pruned.length}, kept ${report.spared.length}`);
      failures.push(...report.failed);
    }
    if (failures.length) throw failures[0].error;
  },
};

/** The bake's record, written once every step, publish and prune included, has its time. */
export function writeBakeManifest(opts: BakeOptions, state: BakeState, imageId: string, records: StepRecord[], leftBehind: { step: string; error: string }[]): string {
  const file = opts.manifest ?? path.join(opts.root, ".kiln", `bake-${opts.stack}.json`);
  const manifest: BakeManifest = {
    ami: imageId,
    region: state.settings.region,
    copies: state.copies ?? {},
    sharedWith: state.settings.shareAccounts ?? [],
    stack: opts.stack,
    name: state.imageName,
    contentHash: state.contentHash,
    baseImage: state.baseImageId,
    gitCommit: state.gitCommit,
    reused: Boolean(state.reusedImageId),
    builtAt: new Date().toISOString(),
    steps: records.map((r) => ({ name: r.name, status: r.status, ms: r.ms })),
    leftBehind,
  };
  writeManifest(file, manifest);
  return file;
}
