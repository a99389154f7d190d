import { CONFIG_KEYS, ConfigKey, KeySpec, S3_GRANT } from "./config-keys";
import { WORKER_VARIABLES } from "../worker/contract";
import { backlogTarget } from "./scaling-rule";

/**
 * A stack's config as Pulumi hands it to a program: every value a string (maps and lists as JSON),
 * keys fully qualified (`kiln:minSize`, `aws:region`), plus which keys hold secrets.
 */
export interface RawStackConfig {
  values: Record<string, string>;
  secretKeys: ReadonlySet<string>;
}

export interface S3Grant {
  access: "read" | "write" | "readwrite";
  bucket: string;
  prefix: string;
}

type Decoded<K extends ConfigKey> = (typeof CONFIG_KEYS)[K]["schema"]["_output"];

/** The validated stack config: one typed object, read before any resource is declared. */
export type KilnConfig = { [K in Exclude<ConfigKey, "s3Access">]: Decoded<K> } & {
  stack: string;
  region: string;
  s3Access: S3Grant[];
  /** Messages per in-service instance the scaling policy aims at. */
  backlogTarget: number;
  /** Seconds the terminate lifecycle hook holds an instance for its worker to drain. */
  drainHeartbeat: number;
};

export class ConfigError extends Error {
  constructor(
    readonly stack: string,
    readonly problems: string[],
  ) {
    super(
      `Stack "${stack}" has invalid config (Pulumi.${stack}.yaml):\n` + problems.map((p) => `  - ${p}`).join("\n"),
    );
    this.name = "ConfigError";
  }
}

const KEY_NAMES = Object.keys(CONFIG_KEYS) as ConfigKey[];

function show(raw: string): string {
  return raw.length > 60 ? JSON.stringify(raw.slice(0, 57) + "...") : JSON.stringify(raw);
}

function decode(spec: KeySpec, raw: string): { value?: unknown; problem?: string } {
  switch (spec.type) {
    case "string":
      return { value: raw };
    case "integer":
      return /^-?\d+$/.test(raw.trim()) ? { value: Number(raw.trim()) } : { problem: "must be a whole number" };
    case "boolean":
      return raw === "true" || raw === "false" ? { value: raw === "true" } : { problem: "must be true or false" };
    case "array":
    case "object": {
      try {
        return { value: JSON.parse(raw) };
      } catch {
        return { problem: spec.type === "array" ? "must be a YAML list" : "must be a YAML map" };
      }
    }
  }
}

/** Levenshtein distance, for "did you mean" on a mistyped key. */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1].toLowerCase() === b[j - 1].toLowerCase() ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length];
}

function unknownKeyProblem(key: string): string {
  const name = key.slice("kiln:".length);
  const best = KEY_NAMES.map((k) => ({ k, d: distance(name, k) })).sort((x, y) => x.d - y.d)[0];
  const hint = best && best.d <= Math.max(2, Math.floor(name.length / 3)) ? `did you mean kiln:${best.k}? ` : "";
  return `${key} is not a kiln setting: ${hint}the README's "Stack config" lists every key`;
}

/**
 * Parses and validates a stack's config. Every problem is reported at once, each naming its key
 * and what would be valid, so one edit of the stack file fixes them all.
 */
export function parseStackConfig(stack: string, raw: RawStackConfig): KilnConfig {
  const problems: string[] = [];
  const out: Record<string, unknown> = {};
  if (!STACK_NAME.test(stack)) {
    problems.push(
      `the stack name ${JSON.stringify(stack)} cannot name AWS resources: use 1 to 40 letters, digits, - or _, starting with a letter or digit`,
    );
  }

  for (const key of Object.keys(raw.values)) {
    if (key.startsWith("kiln:") && !(key.slice(5) in CONFIG_KEYS)) problems.push(unknownKeyProblem(key));
  }

  for (const name of KEY_NAMES) {
    const spec: KeySpec = CONFIG_KEYS[name];
    const key = `kiln:${name}`;
    const given = raw.values[key];
    // A secret's value is never echoed back, not even in an error.
    const shown = raw.secretKeys.has(key) ? "a secret value" : show(given ?? "");
    if (given === undefined) {
      if (spec.default === undefined) problems.push(`${key} is required: ${spec.description}`);
      else out[name] = spec.default;
      continue;
    }
    const decoded = decode(spec, given);
    if (decoded.problem) {
      problems.push(`${key} ${decoded.problem} (got ${shown})`);
      continue;
    }
    const result = spec.schema.safeParse(decoded.value);
    if (!result.success) {
      const issue = result.error.issues[0];
      const where = issue.path.length ? `.${issue.path.join(".")}` : "";
      // A bad map key is reported on the map; the key's own message says what is wrong with it.
      const message = issue.code === "invalid_key" ? issue.issues[0]?.message ?? issue.message : issue.message;
      problems.push(`${key}${where} ${message} (got ${shown})`);
      continue;
    }
    out[name] = result.data;
  }

  const region = raw.values["aws:region"];
  if (!region) problems.push("aws:region is not set: run `pulumi config set aws:region <region>`, e.g. ap-northeast-1");
  else if (!/^[a-z]{2}(-[a-z]+)+-\d$/.test(region)) problems.push(`aws:region must be an AWS region such as ap-northeast-1 (got ${show(region)})`);

  if (problems.length === 0) problems.push(...crossChecks(raw, out as Partial<KilnConfig>));
  if (problems.length > 0) throw new ConfigError(stack, problems);

  const cfg = out as unknown as KilnConfig;
  cfg.stack = stack;
  cfg.region = region!;
  cfg.s3Access = (out.s3Access as string[]).map(parseGrant);
  cfg.backlogTarget = backlogTarget(cfg.acceptableLatency, cfg.avgProcessingMs);
  cfg.drainHeartbeat = cfg.drainTimeout + 60;
  return cfg;
}

export function parseGrant(grant: string): S3Grant {
  const m = S3_GRANT.exec(grant)!;
  return { access: m[1] as S3Grant["access"], bucket: m[2], prefix: m[3] };
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
const KILN_TAG_KEYS = ["kiln:stack", "ManagedBy", "Name"];

/** Letters, digits, - and _: stack names end up in queue, group and role names. */
const STACK_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$/;

function crossChecks(raw: RawStackConfig, c: Partial<KilnConfig>): string[] {
  const problems: string[] = [];
  const kiln = (k: ConfigKey) => `kiln:${k}`;

  for (const key of Object.keys(c.tags ?? {})) {
    if (KILN_TAG_KEYS.includes(key)) problems.push(`kiln:tags.${key} is a tag kiln sets itself: choose another key`);
  }
  if (Object.keys(c.tags ?? {}).length + KILN_TAG_KEYS.length > 50) {
    problems.push(`kiln:tags has ${Object.keys(c.tags ?? {}).length} tags: AWS allows 50 per resource, and kiln uses ${KILN_TAG_KEYS.length}`);
  }
  if (c.minSize! > c.maxSize!) {
    problems.push(`kiln:minSize (${c.minSize}) is above kiln:maxSize (${c.maxSize}): the minimum must be at most the maximum`);
  }
  if (c.spot && c.onDemandBaseCapacity! > c.maxSize!) {
    problems.push(`kiln:onDemandBaseCapacity (${c.onDemandBaseCapacity}) is above kiln:maxSize (${c.maxSize})`);
  }
  if (c.visibilityTimeout! <= c.processingTimeout!) {
    problems.push(
      `kiln:visibilityTimeout (${c.visibilityTimeout}) must be above kiln:processingTimeout (${c.processingTimeout}), ` +
        `or a message still being processed becomes visible and runs twice: set it to ${c.processingTimeout! + 1} or more`,
    );
  }
  const target = (c.acceptableLatency! * 1000) / c.avgProcessingMs!;
  if (target < 1) {
    problems.push(
      `kiln:acceptableLatency (${c.acceptableLatency} s) / kiln:avgProcessingMs (${c.avgProcessingMs} ms) gives a backlog ` +
        `target of ${target.toFixed(2)} messages per instance, below 1: raise kiln:acceptableLatency to at least ` +
        `${Math.ceil(c.avgProcessingMs! / 1000)} s or lower kiln:avgProcessingMs`,
    );
  }
  const modes = (["workerHandler", "workerCommand", "workerApp"] as const).filter((k) => c[k]);
  if (modes.length !== 1) {
    problems.push(
      modes.length
        ? `${modes.map(kiln).join(" and ")} are ${modes.length === 2 ? "both" : "all"} set: set exactly one`
        : "none of kiln:workerHandler, kiln:workerCommand and kiln:workerApp is set: set exactly one " +
            "(a JS module, a command run per message, or a long-lived HTTP app)",
    );
  }

  // Kiln's own variables, and what would change how the SDK or node behave behind the worker's back:
  // credentials in the environment would shadow the instance role.
  const reserved = new Set<string>([...WORKER_VARIABLES, ...SDK_AND_RUNTIME_VARIABLES]);
  for (const which of ["env", "secretEnv"] as const) {
    for (const name of Object.keys(c[which] ?? {})) {
      if (reserved.has(name)) {
        problems.push(
          (WORKER_VARIABLES as readonly string[]).includes(name)
            ? `${kiln(which)}.${name} is set by kiln itself from the stack config: use the kiln:* key for it`
            : `${kiln(which)}.${name} must not be set: it would override the instance role or the worker's runtime`,
        );
      }
    }
  }
  for (const name of Object.keys(c.env ?? {})) {
    if (name in (c.secretEnv ?? {})) problems.push(`kiln:env.${name} is also in kiln:secretEnv: keep it in one of them`);
  }
  if (raw.secretKeys.has("kiln:env")) {
    problems.push(
      "kiln:env holds a secret value: secrets belong in kiln:secretEnv (pulumi config set --secret --path 'kiln:secretEnv.NAME')",
    );
  }
  if (Object.keys(c.secretEnv ?? {}).length > 0 && !raw.secretKeys.has("kiln:secretEnv")) {
    problems.push(
      "kiln:secretEnv holds plaintext values: set each with `pulumi config set --secret --path 'kiln:secretEnv.NAME'` " +
        "so the stack file keeps only ciphertext",
    );
  }
  for (const key of Object.keys(raw.values)) {
    if (key.startsWith("kiln:") && key !== "kiln:secretEnv" && key !== "kiln:env" && raw.secretKeys.has(key)) {
      problems.push(`${key} is a secret, but only kiln:secretEnv values may be: secrets elsewhere would reach tags and user data`);
    }
  }
  return problems;
}
