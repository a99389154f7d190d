import type { KilnConfig, RawStackConfig } from "./config";
import type { ConfigKey } from "./config-keys";
import { scaleInProblems } from "./scale-in";
import { WORKER_VARIABLES } from "../worker/contract";

/**
 * Checks that span keys: what AWS, systemd or SQS would reject or silently get wrong, each with the
 * rule it encodes. They run on whatever parsed, so a stack file with a bad key and a bad pair of keys
 * shows both problems at once; a check whose keys did not parse is skipped, its key's own problem
 * already says why.
 */
export function crossChecks(stack: string, raw: RawStackConfig, c: Partial<KilnConfig>): string[] {
  const problems: string[] = [];
  const has = (...keys: (keyof KilnConfig)[]) => keys.every((k) => c[k] !== undefined);
  const kiln = (k: ConfigKey) => `kiln:${k}`;

  if (has("tags")) {
    for (const key of Object.keys(c.tags!)) {
      if (KILN_TAG_KEYS.includes(key)) problems.push(`kiln:tags.${key} is a tag kiln sets itself: choose another key`);
    }
    // AWS: "Maximum number of tags per resource: 50."
    if (Object.keys(c.tags!).length + KILN_TAG_KEYS.length > 50) {
      problems.push(`kiln:tags has ${Object.keys(c.tags!).length} tags: AWS allows 50 per resource, and kiln uses ${KILN_TAG_KEYS.length}`);
    }
  }
  if (has("minSize", "maxSize") && c.minSize! > c.maxSize!) {
    problems.push(`kiln:minSize (${c.minSize}) is above kiln:maxSize (${c.maxSize}): the minimum must be at most the maximum`);
  }
  if (has("spot", "onDemandBaseCapacity", "maxSize") && c.spot && c.onDemandBaseCapacity! > c.maxSize!) {
    problems.push(`kiln:onDemandBaseCapacity (${c.onDemandBaseCapacity}) is above kiln:maxSize (${c.maxSize})`);
  }
  if (has("visibilityTimeout", "processingTimeout") && c.visibilityTimeout! <= c.processingTimeout!) {
    problems.push(
      `kiln:visibilityTimeout (${c.visibilityTimeout}) must be above kiln:processingTimeout (${c.processingTimeout}), ` +
        `or a message still being processed becomes visible and runs twice: set it to ${c.processingTimeout! + 1} or more`,
    );
  }
  if (has("acceptableLatency", "avgProcessingMs")) {
    const target = (c.acceptableLatency! * 1000) / c.avgProcessingMs!;
    if (target < 1) {
      problems.push(
        `kiln:acceptableLatency (${c.acceptableLatency} s) / kiln:avgProcessingMs (${c.avgProcessingMs} ms) gives a backlog ` +
          `target of ${target.toFixed(2)} messages per instance, below 1: raise kiln:acceptableLatency to at least ` +
          `${Math.ceil(c.avgProcessingMs! / 1000)} s or lower kiln:avgProcessingMs`,
      );
    }
  }
  if (has("workerHandler", "workerCommand", "workerApp")) {
    const modes = (["workerHandler", "workerCommand", "workerApp"] as const).filter((k) => c[k]);
    if (modes.length !== 1) {
      problems.push(
        modes.length
          ? `${modes.map(kiln).join(" and ")} are ${modes.length === 2 ? "both" : "all"} set: set exactly one`
          : "none of kiln:workerHandler, kiln:workerCommand and kiln:workerApp is set: set exactly one " +
              "(a JS module, a command run per message, or a long-lived HTTP app)",
      );
    }
  }
  // AWS RefreshPreferences: "Both MinHealthyPercentage and MaxHealthyPercentage must be specified, and
  // the difference between them cannot be greater than 100." AWS checks it only when a refresh starts:
  // after the launch template has already moved on, leaving a mixed fleet.
  if (has("refreshMinHealthyPercentage", "refreshMaxHealthyPercentage")) {
    const [min, max] = [c.refreshMinHealthyPercentage!, c.refreshMaxHealthyPercentage!];
    if (max - min > 100) {
      problems.push(
        `kiln:refreshMaxHealthyPercentage (${max}) is more than 100 above kiln:refreshMinHealthyPercentage (${min}): ` +
          `AWS refuses to start such an instance refresh; lower the maximum to ${min + 100} or raise the minimum to ${max - 100}`,
      );
    }
  }
  if (has("scaleInTimeout", "processingTimeout")) problems.push(...scaleInProblems(c.scaleInTimeout!, c.processingTimeout!));
  if (has("instanceType", "spot", "spotInstanceTypes")) {
    const types = c.spot && c.spotInstanceTypes!.length ? c.spotInstanceTypes! : [c.instanceType!];
    const burstable = types.filter(isBurstable);
    // A launch template's CreditSpecification is "the credit option for CPU usage of a T instance": one
    // template cannot give T instances a credit mode and leave the other types without one.
    if (burstable.length > 0 && burstable.length < types.length) {
      problems.push(
        `kiln:spotInstanceTypes mixes burstable types (${burstable.join(", ")}) with others ` +
          `(${types.filter((t) => !isBurstable(t)).join(", ")}): kiln:cpuCredits applies to T instances only; list one kind`,
      );
    }
  }
  const bakeVolume = (c.bake as { rootVolumeSize?: number } | undefined)?.rootVolumeSize;
  if (bakeVolume !== undefined && has("rootVolumeSize") && bakeVolume > c.rootVolumeSize!) {
    // EC2: a volume launched from a snapshot must be at least the snapshot's size.
    problems.push(
      `kiln:bake.rootVolumeSize (${bakeVolume}) is above kiln:rootVolumeSize (${c.rootVolumeSize}): the image's root snapshot ` +
        `would be larger than the workers' root volume and every launch would fail; raise kiln:rootVolumeSize to ${bakeVolume}`,
    );
  }
  problems.push(...environmentProblems(c));
  problems.push(...secretProblems(stack, raw, c));
  return problems;
}

/** T2, T3, T3a, T4g...: the instance types with CPU credits. */
export function isBurstable(instanceType: string): boolean {
  return /^t\d[a-z]*\./.test(instanceType);
}

const SDK_AND_RUNTIME_VARIABLES = [
  "AWS_ACCESS_KEY_ID",
  "AWS_SECRET_ACCESS_KEY",
  "AWS_SESSION_TOKEN",
  "AWS_PROFILE",
  "AWS_DEFAULT_REGION",
  "AWS_CONFIG_FILE",
  "AWS_SHARED_CREDENTIALS_FILE",
  "NODE_OPTIONS",
  // kiln gives each app process its own PORT (app mode).
  "PORT",
];

/** Tags kiln sets on everything: a user tag may not replace them. */
export const KILN_TAG_KEYS = ["kiln:stack", "ManagedBy", "Name"];

function environmentProblems(c: Partial<KilnConfig>): string[] {
  const problems: string[] = [];
  // Kiln's own variables, and what would change how the SDK or node behave behind the worker's back:
  // credentials in the environment would shadow the instance role.
  const reserved = new Set<string>([...WORKER_VARIABLES, ...SDK_AND_RUNTIME_VARIABLES]);
  for (const which of ["env", "secretEnv"] as const) {
    for (const name of Object.keys(c[which] ?? {})) {
      if (reserved.has(name)) {
        problems.push(
          (WORKER_VARIABLES as readonly string[]).includes(name)
            ? `kiln:${which}.${name} is set by kiln itself from the stack config: use the kiln:* key for it`
            : `kiln:${which}.${name} must not be set: it would override the instance role or the worker's runtime`,
        );
      }
    }
  }
  for (const name of Object.keys(c.env ?? {})) {
    if (name in (c.secretEnv ?? {})) problems.push(`kiln:env.${name} is also in kiln:secretEnv: keep it in one of them`);
  }
  return problems;
}

/**
 * Secrets only in kiln:secretEnv, and every value there a secret. The Pulumi CLI marks a whole map
 * secret when one value in it is, so which values are plaintext comes from the stack file itself
 * (`secretLeaves`) when it is at hand, and from the map as a whole when it is not.
 */
function secretProblems(stack: string, raw: RawStackConfig, c: Partial<KilnConfig>): string[] {
  const problems: string[] = [];
  const leaves = raw.secretLeaves ?? new Map<string, boolean>();
  const setSecret = (name: string) => `pulumi config set --secret --path 'kiln:secretEnv.${name}' ... --stack ${stack}`;

  for (const name of Object.keys(c.secretEnv ?? {})) {
    const leaf = leaves.get(`kiln:secretEnv.${name}`);
    if (leaf === false || (leaf === undefined && !raw.secretKeys.has("kiln:secretEnv"))) {
      problems.push(`kiln:secretEnv.${name} is plaintext: set it with \`${setSecret(name)}\`, so the stack file keeps only ciphertext`);
    }
  }

  const named = [...leaves].filter(([path, secret]) => secret && !path.startsWith("kiln:secretEnv.")).map(([path]) => path);
  for (const path of named) {
    if (path.startsWith("kiln:env.")) {
      const name = path.slice("kiln:env.".length);
      problems.push(`${path} is a secret: secrets belong in kiln:secretEnv; move it there with \`${setSecret(name)}\``);
    } else {
      problems.push(`${path} is a secret, but only kiln:secretEnv values may be: secrets elsewhere would reach tags and user data`);
    }
  }
  for (const key of raw.secretKeys) {
    if (!key.startsWith("kiln:") || key === "kiln:secretEnv" || named.some((p) => p.startsWith(`${key}.`) || p.startsWith(`${key}[`))) continue;
    problems.push(
      key === "kiln:env"
        ? "kiln:env holds a secret value: secrets belong in kiln:secretEnv (pulumi config set --secret --path 'kiln:secretEnv.NAME')"
        : `${key} is a secret, but only kiln:secretEnv values may be: secrets elsewhere would reach tags and user data`,
    );
  }
  return problems;
}
