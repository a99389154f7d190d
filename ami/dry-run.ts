import { awsErrorCode } from "./aws-errors";
import type { Output } from "./report";
import type { BakeState } from "./state";
import { Step, StepContext } from "./step";
import { offlineBaseImage } from "./steps/resolve-base-image";

/**
 * `--dry-run` with no credentials, or no network, still does what needs no AWS: it builds the payload,
 * hashes it, and prints the plan, marking each thing it could not check. These are the failures that
 * mean "AWS cannot be asked from here", as opposed to an answer that something is wrong.
 */
const OFFLINE = new Set([
  "CredentialsProviderError", "InvalidClientTokenId", "UnrecognizedClientException", "AuthFailure", "SignatureDoesNotMatch",
  "ExpiredToken", "ExpiredTokenException", "RequestExpired", "UnauthorizedOperation", "AccessDenied", "AccessDeniedException",
  "ECONNREFUSED", "ECONNRESET", "ENOTFOUND", "EAI_AGAIN", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "TimeoutError",
]);

export function cannotAskAws(e: unknown): boolean {
  const code = awsErrorCode(e);
  return code !== undefined && OFFLINE.has(code);
}

/** What each read-only step can do without AWS, and what it then leaves unchecked. */
const OFFLINE_RUN: Record<string, (state: BakeState, ctx: StepContext, real: Step<BakeState>) => Promise<string | undefined>> = {
  "pre-validate": async () => "credentials, region, the builder's subnet and that the image name is free",
  "resolve-base-image": async (state) => offlineBaseImage(state),
  "prepare-payload": async (state, ctx, real) => {
    await real.run(state, ctx);
    return state.contentHash ? undefined : "the content hash: it includes the base image's id, which only AWS can say";
  },
  "reuse-image": async () => "whether an image with this content hash exists (so whether the bake would reuse it)",
};

/**
 * A dry-run step that carries on without AWS: after the first failure that says AWS cannot be asked
 * (state.offline), this and every later step does only its local part and records what it skipped.
 */
export function offlineTolerant(step: Step<BakeState>): Step<BakeState> {
  const offline = OFFLINE_RUN[step.name];
  if (!offline) return step;
  const fallBack = async (state: BakeState, ctx: StepContext) => {
    const skipped = await offline(state, ctx, step);
    if (skipped) (state.unchecked ??= []).push({ step: step.name, what: skipped });
  };
  return {
    ...step,
    async run(state, ctx) {
      if (state.offline) return fallBack(state, ctx);
      try {
        await step.run(state, ctx);
      } catch (e) {
        if (!cannotAskAws(e)) throw e;
        state.offline = `${awsErrorCode(e)}: ${(e as Error).message}`;
        ctx.log(`cannot ask AWS (${state.offline}); going on offline`);
        await fallBack(state, ctx);
      }
    },
  };
}

export interface Plan {
  dryRun: true;
  stack: string;
  region: string;
  contentHash?: string;
  payloadHash?: string;
  baseImage?: string;
  architecture?: string;
  reuse?: string;
  wouldCreate: string[];
  wouldCopy: string[];
  wouldShare: string[];
  wouldWrite: string;
  wouldPrune: string;
  /** Set when AWS could not be asked: why, and what could not be checked. */
  offline?: string;
  unchecked: { step: string; what: string }[];
}

export function planOf(state: BakeState, stack: string): Plan {
  const s = state.settings;
  const keyPair = `key pair kiln-builder-${state.buildId} (ed25519)`;
  const how = s.sshInterface === "session_manager"
    ? [keyPair, `IAM role and instance profile kiln-builder-${state.buildId} (Session Manager only)`, `security group with no inbound rule in ${s.subnetId}'s VPC`,
       `a Session Manager session forwarding a local port to the builder's port 22 (session-manager-plugin ${state.sessionPluginVersion ?? "not found"})`]
    : [keyPair, `security group allowing SSH from ${s.sshCidr || (s.sshInterface === "private_ip" ? "the VPC" : "your address")} in ${s.subnetId}'s VPC`];
  const base = state.baseImageId ?? state.baseImageSource ?? "(unresolved)";
  return {
    dryRun: true,
    stack,
    region: s.region,
    contentHash: state.contentHash,
    payloadHash: state.payloadHash,
    baseImage: base,
    architecture: state.architecture,
    reuse: state.reusedImageId,
    wouldCreate: state.reusedImageId
      ? []
      : [
          ...how,
          `builder ${s.instanceType} from ${base}, ${s.kmsKeyId ? `root encrypted with ${s.kmsKeyId}` : "encrypted root"} ${s.rootVolumeSize} GiB, IMDSv2, self-destruct after ${s.builderLifetimeMinutes} min`,
          `image ${state.imageName} (encrypted${s.kmsKeyId ? ` with ${s.kmsKeyId}` : ""}, IMDSv2) and its snapshots`,
        ],
    wouldCopy: (s.copyRegions ?? []).map((r) => `${r}${s.regionKmsKeyIds?.[r] ? ` (encrypted with ${s.regionKmsKeyIds[r]})` : ""}`),
    wouldShare: s.shareAccounts ?? [],
    wouldWrite: `kiln:amiId in Pulumi.${stack}.yaml`,
    wouldPrune: `images of ${stack} beyond the newest ${s.keep} complete ones, sparing those the latest or default version of a launch template, or an instance, uses`,
    offline: state.offline,
    unchecked: state.unchecked ?? [],
  };
}

export function printPlan(plan: Plan, out: Output, json: boolean): void {
  if (json) {
    out.write(JSON.stringify({ event: "plan", ...plan }) + "\n");
    return;
  }
  const lines = ["", `Plan (--dry-run: nothing was created${plan.offline ? "; AWS could not be asked, so this is what the files alone say" : ""}):`];
  if (plan.contentHash) lines.push(`  content hash  ${plan.contentHash}`);
  else lines.push(`  content hash  not known offline: it includes the base image's id`, `  payload hash  ${plan.payloadHash ?? "(none)"} (the files that go into the image)`);
  lines.push(`  base image    ${plan.baseImage} (${plan.architecture ?? "architecture unknown"})`);
  lines.push(plan.reuse ? `  reuse         ${plan.reuse}: same content hash, no bake needed (--force bakes anyway)` : "  would create:");
  lines.push(...plan.wouldCreate.map((c) => `    - ${c}`));
  if (plan.wouldCopy.length) lines.push(`  would copy to ${plan.wouldCopy.join(", ")}`);
  if (plan.wouldShare.length) lines.push(`  would share with ${plan.wouldShare.join(", ")}`);
  lines.push(`  would write   ${plan.wouldWrite}`, `  would prune   ${plan.wouldPrune}`);
  if (plan.unchecked.length) {
    lines.push("", `Not checked (${plan.offline}):`, ...plan.unchecked.map((u) => `  ? ${u.step}: ${u.what}`));
  }
  out.write(lines.join("\n") + "\n");
}
