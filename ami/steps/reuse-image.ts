import { findImageByContentHash } from "../prune";
import type { BakeState } from "../state";
import { Step, StepError } from "../step";

const STEP = "reuse-image";

/**
 * Unchanged inputs, no bake: a complete image of this stack tagged with the same content hash is
 * the image this bake would make, so the run ends here, in seconds, having launched nothing.
 */
export const stepReuseImage: Step<BakeState> = {
  name: STEP,
  title: "look for an image with the same content hash",

  async run(state, ctx) {
    if (!state.contentHash) throw new StepError(STEP, "no content hash yet", undefined, "prepare-payload runs before this step");
    const image = await findImageByContentHash(state.clients.ec2, state.settings.stack, state.contentHash, (id, why) =>
      ctx.log(`${id} has the same content hash but is not reused: ${why}`),
    );
    if (!image?.ImageId) {
      ctx.log("none: baking a new image");
      return;
    }
    if (state.force) {
      ctx.log(`${image.ImageId} (${image.Name}) has the same content hash; baking anyway (--force)`);
      return;
    }
    state.reusedImageId = image.ImageId;
    state.imageName = image.Name;
    ctx.log(`${image.ImageId} (${image.Name}) has the same content hash: reusing it`);
  },

  finishEarly: (state) => (state.reusedImageId ? `${state.reusedImageId} was made from the same inputs; reused it (--force bakes anyway)` : undefined),
};
