import { z } from "zod";
import { CONFIG_KEYS, ConfigKey, KeySpec, S3_GRANT } from "./config-keys";
import { backlogTarget } from "./scaling-rule";
import { crossChecks } from "./config-checks";
import { ConfigError } from "./config-errors";
import { didYouMean } from "./did-you-mean";
import { lifecycleHeartbeatTimeout, scaleInBudget } from "./scale-in";

export { ConfigError, StackFileError } from "./config-errors";

/**
 * A stack's config as Pulumi hands it to a program: every value a string (maps and lists as JSON),
 * keys fully qualified (`kiln:minSize`, `aws:region`), plus which keys hold secrets.
 */
export interface RawStackConfig {
  values: Record<string, string>;
  secretKeys: ReadonlySet<string>;
  /**
   * When the stack file is at hand: for each value inside a map or list (`kiln:secretEnv.API_TOKEN`),
   * whether it was written `secure:`. The CLI tells a program only about whole keys.
   */
  secretLeaves?: ReadonlyMap<string, boolean>;
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
  /** The terminate lifecycle hook's heartbeat timeout (scaleInTimeout is resolved, never 0). */
  lifecycleHeartbeatTimeout: number;
};

const KEY_NAMES = Object.keys(CONFIG_KEYS) as ConfigKey[];

/** Keys kiln once read: what to do instead. */
const RETIRED_KEYS: Record<string, string> = {
  rootDeviceName: "kiln reads the root device from the baked image now: delete the line",
};

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

function unknownKeyProblem(key: string): string {
  if (!key.includes(":")) {
    return `${key} has no namespace: Pulumi config keys are namespace:key, e.g. kiln:${key}`;
  }
  const name = key.slice("kiln:".length);
  if (name in RETIRED_KEYS) return `${key} is no longer a kiln setting: ${RETIRED_KEYS[name]}`;
  return `${key} is not a kiln setting: ${didYouMean(name, KEY_NAMES, (k) => `kiln:${k}`)}docs/config.md lists every key`;
}

/** The part of a decoded value a problem is about: one list item or map entry, not the whole. */
function valueAt(value: unknown, path: PropertyKey[]): unknown {
  let v = value;
  for (const p of path) v = v !== null && typeof v === "object" ? (v as Record<PropertyKey, unknown>)[p] : undefined;
  return v;
}

/** Each of a key's problems, one line each, naming the setting and showing only the offending part. */
function schemaProblems(key: string, spec: KeySpec, value: unknown, secret: boolean, error: z.ZodError): string[] {
  return error.issues.flatMap((issue) => {
    const where = issue.path.map((p) => `.${String(p)}`).join("");
    if (issue.code === "unrecognized_keys") {
      const known = "shape" in spec.schema ? Object.keys((spec.schema as z.ZodObject).shape) : [];
      return issue.keys.map(
        (k) => `${key}${where}.${k} is not a setting of ${key}${where}: ${didYouMean(k, known)}use ${known.join(", ")}`,
      );
    }
    // A bad map key is reported on the map; the key's own message says what is wrong with it.
    const message = issue.code === "invalid_key" ? issue.issues[0]?.message ?? issue.message : issue.message;
    const got = valueAt(value, issue.path);
    const shown = secret ? "a secret value" : got === undefined ? "nothing" : show(typeof got === "string" ? got : JSON.stringify(got));
    return [`${key}${where} ${message} (got ${shown})`];
  });
}

function requiredProblem(stack: string, name: ConfigKey, spec: KeySpec): string {
  const example = name === "subnetIds" ? `--path 'kiln:subnetIds[0]' subnet-0123456789abcdef0` : `kiln:${name} ${spec.example ?? "..."}`;
  return `kiln:${name} is required: ${spec.description} Set it with \`pulumi config set ${example} --stack ${stack}\``;
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
    if (!key.includes(":") || (key.startsWith("kiln:") && !(key.slice(5) in CONFIG_KEYS))) problems.push(unknownKeyProblem(key));
  }

  for (const name of KEY_NAMES) {
    const spec: KeySpec = CONFIG_KEYS[name];
    const key = `kiln:${name}`;
    const given = raw.values[key];
    // A secret's value is never echoed back, not even in an error.
    const secret = raw.secretKeys.has(key);
    if (given === undefined) {
      if (spec.default === undefined) problems.push(requiredProblem(stack, name, spec));
      else out[name] = spec.default;
      continue;
    }
    const decoded = decode(spec, given);
    if (decoded.problem) {
      problems.push(`${key} ${decoded.problem} (got ${secret ? "a secret value" : show(given)})`);
      continue;
    }
    const result = spec.schema.safeParse(decoded.value);
    if (!result.success) {
      problems.push(...schemaProblems(key, spec, decoded.value, secret, result.error));
      continue;
    }
    out[name] = result.data;
  }

  const region = raw.values["aws:region"];
  if (!region) problems.push(`aws:region is not set: run \`pulumi config set aws:region <region> --stack ${stack}\`, e.g. ap-northeast-1`);
  else if (!/^[a-z]{2}(-[a-z]+)+-\d$/.test(region)) problems.push(`aws:region must be an AWS region such as ap-northeast-1 (got ${show(region)})`);

  problems.push(...crossChecks(stack, raw, out as Partial<KilnConfig>));
  if (problems.length > 0) throw new ConfigError(stack, problems);

  const cfg = out as unknown as KilnConfig;
  cfg.stack = stack;
  cfg.region = region!;
  cfg.s3Access = (out.s3Access as string[]).map(parseGrant);
  cfg.backlogTarget = backlogTarget(cfg.acceptableLatency, cfg.avgProcessingMs);
  cfg.scaleInTimeout = scaleInBudget(cfg.scaleInTimeout, cfg.processingTimeout);
  cfg.lifecycleHeartbeatTimeout = lifecycleHeartbeatTimeout(cfg.scaleInTimeout);
  return cfg;
}

export function parseGrant(grant: string): S3Grant {
  const m = S3_GRANT.exec(grant)!;
  return { access: m[1] as S3Grant["access"], bucket: m[2], prefix: m[3] };
}

/** Letters, digits, - and _: stack names end up in queue, group and role names. */
const STACK_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$/;
