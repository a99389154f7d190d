import { contentHash } from "../content-hash";
import { defaultCacheDir, NODE_VERSION, preparePayload } from "../payload";
import { describeWorkerMode } from "../self-check-env";
import type { BakeState } from "../state";
import { Step, StepError } from "../step";

const STEP = "prepare-payload";

/**
 * Builds what the builder will receive (worker bundle, units, Node runtime for the base image's
 * architecture, scripts) and hashes it with the base image and the settings that shape the image:
 * the hash is what lets an unchanged bake reuse the image it made last time.
 */
export const stepPreparePayload: Step<BakeState> = {
  name: STEP,
  title: "build the worker bundle and hash what goes into the image",

  async run(state, ctx) {
    if (!state.architecture || (!state.baseImageId && !state.offline)) {
      throw new StepError(STEP, "the base image is not resolved yet", undefined, "resolve-base-image runs before this step");
    }
    state.payloadDir = await preparePayload(state.root, state.architecture, defaultCacheDir(state.root), state.settings.appDir);
    const inputs = {
      // The stack is baked in (the CloudWatch agent ships to /kiln/<stack>/worker).
      stack: state.settings.stack,
      architecture: state.architecture,
      rootVolumeSize: state.settings.rootVolumeSize,
      sshUser: state.settings.sshUser,
      // validate checked this handler, command or app: another one must be checked on a new bake.
      workerMode: describeWorkerMode(state.settings.selfCheckEnv ?? {}),
      // Another key makes another image; absent, the hash is what it was before keys could be chosen.
      ...(state.settings.kmsKeyId ? { kmsKeyId: state.settings.kmsKeyId } : {}),
    };
    state.payloadHash = contentHash(state.payloadDir, inputs);
    ctx.log(`payload ${state.payloadDir} (Node ${NODE_VERSION}, ${state.architecture})`);
    if (!state.baseImageId) {
      ctx.log(`payload hash ${state.payloadHash}; the content hash needs the base image's id`);
      return;
    }
    state.contentHash = contentHash(state.payloadDir, { ...inputs, baseImage: state.baseImageId });
    ctx.log(`content hash ${state.contentHash}`);
  },
};
