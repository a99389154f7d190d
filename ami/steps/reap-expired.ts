import { reapBuilders } from "../reap";
import type { BakeState } from "../state";
import { Step } from "../step";

/**
 * Before launching a builder, remove what killed bakes of this stack left past their deadline. A
 * builder's self-destruct timer runs only while it runs: one a killed bake had already stopped (to
 * make its image) would otherwise stay, stopped and billed for its volume, until someone ran --reap.
 */
export const stepReapExpired: Step<BakeState> = {
  name: "reap-expired",
  title: "remove builders that killed bakes left past their deadline",

  async run(state, ctx) {
    const report = await reapBuilders({
      ec2: state.clients.ec2,
      iam: state.clients.iam,
      olderThanMinutes: state.settings.builderLifetimeMinutes,
      stack: state.settings.stack,
      pollMs: state.settings.pollMs,
      timeoutSeconds: state.settings.instanceTimeout,
      signal: ctx.signal,
      log: ctx.log,
    });
    // What would not go is reported, not fatal: it is an earlier bake's, and this bake does not need it gone.
    for (const f of report.failed) ctx.log(`could not remove ${f.resource} (an earlier bake's): ${f.error.message}`);
  },
};
