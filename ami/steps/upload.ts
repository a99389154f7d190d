import { Transform } from "node:stream";
import { createGzip } from "node:zlib";
import {
  architectureOf,
  defaultCacheDir,
  listPayloadFiles,
  payloadArchitecture,
  preparePayload,
  remotePayloadDir,
} from "../payload";
import { address, asRoot, exec } from "../ssh";
import type { BakeState } from "../state";
import { Step, StepError } from "../step";
import { tarStream } from "../tar";
import { runAsRoot, sessionOf, sudoHint, sudoRefused } from "./ssh-session";

const STEP = "upload";

/**
 * Sends the payload (worker bundle, units, Node runtime, scripts) to the builder as one gzipped tar
 * through the stdin of `tar -x` run as root: modes survive, and a non-root login user needs no
 * writable directory of its own. Prepares the payload first when no earlier step has (--target
 * ssh), for the architecture the host reports.
 */
export const stepUpload: Step<BakeState> = {
  name: STEP,
  title: "upload the worker bundle, Node runtime and scripts",

  async run(state, ctx) {
    const session = sessionOf(state, STEP);
    const uname = await exec(session.ssh, "uname -m", { signal: ctx.signal });
    const hostArch = architectureOf(uname.stdout);
    if (!hostArch) {
      throw new StepError(STEP, `the builder's architecture ${JSON.stringify(uname.stdout.trim())} is not x86_64 or arm64`, undefined, "kiln bakes x86_64 and arm64 images only");
    }
    if (state.architecture && state.architecture !== hostArch) {
      throw new StepError(STEP, `the base image is ${state.architecture} but the builder runs ${hostArch}`, undefined, "pick an instance type of the base image's architecture");
    }
    state.architecture = hostArch;

    if (!state.payloadDir) {
      ctx.log(`building the payload for ${hostArch}`);
      state.payloadDir = await preparePayload(state.root, hostArch, defaultCacheDir(state.root), state.settings.appDir).catch((e: Error) => {
        throw new StepError(STEP, `could not prepare the payload: ${e.message}`, undefined, "`npm run build:worker` must succeed, and npm must reach its registry for the Node runtime");
      });
    }
    const payloadArch = payloadArchitecture(state.payloadDir);
    if (payloadArch !== hostArch) {
      throw new StepError(STEP, `the payload in ${state.payloadDir} carries Node for ${payloadArch}, the builder is ${hostArch}`, undefined, "prepare the payload for the builder's architecture");
    }

    const files = listPayloadFiles(state.payloadDir);
    const remote = remotePayloadDir(state.buildId);
    const extract = `rm -rf ${remote} && mkdir -m 0700 ${remote} && tar -xzf - -C ${remote} --no-same-owner`;
    let sent = 0;
    const gzip = createGzip({ level: 6 });
    // Counted on the way through: a 'data' listener would start the flow before anyone reads it.
    const counted = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        sent += chunk.length;
        done(null, chunk);
      },
    });
    const t0 = Date.now();
    // A local read error must end the remote tar too, which would otherwise wait for more input.
    const failed = new AbortController();
    const archive = tarStream(state.payloadDir, files);
    const fail = (e: Error) => failed.abort(new StepError(STEP, `reading the payload failed: ${e.message}`));
    archive.on("error", fail);
    gzip.on("error", fail);
    archive.pipe(gzip).pipe(counted);
    ctx.log(`uploading ${files.length} files to ${address(session.target)}:${remote}`);
    const progress = setInterval(() => ctx.log(`  ${mb(sent)} sent`), 15_000);
    try {
      const signal = AbortSignal.any([ctx.signal, failed.signal]);
      const r = await runAsRoot(session, STEP, ["sh", "-c", extract], { log: (line) => ctx.log(line), signal }, { stdin: counted });
      if (sudoRefused(r)) throw new StepError(STEP, `sudo on ${address(session.target)} asks for a password`, undefined, sudoHint(session.target.user));
      if (r.code !== 0) {
        throw new StepError(STEP, `extracting the payload on the builder failed (exit ${r.code}): ${r.stderr.trim()}`, undefined, "the builder needs tar and gzip, and free space in /var/tmp");
      }
    } finally {
      clearInterval(progress);
      archive.destroy();
    }
    ctx.log(`uploaded ${mb(sent)} (gzip) in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  },

  /** After a failure, an existing host (--target ssh) keeps no payload; clean has already removed it otherwise. */
  async cleanup(state) {
    if (!state.connection?.isConnected() || !state.ssh) return;
    const remote = remotePayloadDir(state.buildId);
    await exec(state.connection, asRoot(state.ssh.user, ["rm", "-rf", remote]), { timeoutMs: 30_000 }).catch(() => undefined);
  },
};

function mb(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}
