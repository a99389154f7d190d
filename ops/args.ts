import { parseArgs, ParseArgsConfig } from "node:util";
import { describeParseError } from "../local/flag-errors";
import { UsageError } from "./exit";

export type FlagSpec = NonNullable<ParseArgsConfig["options"]>;
export type FlagValues = Record<string, string | boolean | string[] | undefined>;

/** Flags every command takes. */
export const GLOBAL_FLAGS: FlagSpec = {
  stack: { type: "string" },
  json: { type: "boolean" },
  local: { type: "boolean" },
  aws: { type: "boolean" },
  region: { type: "string" },
  profile: { type: "string" },
  "endpoint-url": { type: "string" },
  "stack-dir": { type: "string" },
  help: { type: "boolean", short: "h" },
};

export const GLOBAL_HELP = `common flags:
  --stack NAME          the stack (Pulumi.NAME.yaml); required
  --json                machine-readable output (one JSON document; one per line with --watch/--follow)
  --local               use the running \`npm run local\` fleet of the stack (the default when one runs)
  --aws                 use the deployed stack even when a local fleet of it runs
  --region R            AWS region (default the stack's aws:region)
  --profile P           AWS profile (default the SDK's chain: AWS_PROFILE, environment keys, SSO, ...)
  --endpoint-url URL    AWS endpoint override (LocalStack, moto); AWS_ENDPOINT_URL works too
  -h, --help            this command's help`;

/** Parses `argv` against the global and the command's flags; throws UsageError naming the flag. */
export function parseFlags(argv: string[], spec: FlagSpec): FlagValues {
  try {
    return parseArgs({ args: argv, options: { ...GLOBAL_FLAGS, ...spec }, strict: true, allowPositionals: false }).values as FlagValues;
  } catch (e) {
    throw new UsageError(describeParseError(e));
  }
}

export function str(values: FlagValues, name: string): string | undefined {
  const v = values[name];
  if (v === undefined) return undefined;
  if (typeof v !== "string" || v.trim() === "") throw new UsageError(`--${name} needs a value`);
  return v;
}

/** A number flag within [min, max]; `integer` for whole numbers. */
export function num(values: FlagValues, name: string, o: { min: number; max: number; integer?: boolean }): number | undefined {
  const raw = values[name];
  if (raw === undefined) return undefined;
  const n = Number(String(raw).replace(/_/g, ""));
  const ok = String(raw).trim() !== "" && Number.isFinite(n) && (!o.integer || Number.isInteger(n)) && n >= o.min && n <= o.max;
  if (!ok) {
    throw new UsageError(`--${name} must be ${o.integer ? "a whole number" : "a number"} from ${o.min} to ${o.max} (got ${JSON.stringify(raw)})`);
  }
  return n;
}

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, min: 60, h: 3600, d: 86400 };

/** "90", "90s", "5m", "1h", "2d" in seconds; a bare number is seconds. */
export function parseDuration(raw: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d)?\s*$/.exec(raw);
  if (!m) return undefined;
  return Number(m[1]) * UNIT_SECONDS[m[2] ?? "s"];
}

export function durationFlag(values: FlagValues, name: string, o: { min?: number; max?: number } = {}): number | undefined {
  const raw = values[name];
  if (raw === undefined) return undefined;
  const s = parseDuration(String(raw));
  if (s === undefined || s < (o.min ?? 0) || s > (o.max ?? Infinity)) {
    throw new UsageError(`--${name} must be a duration such as 90s, 5m, 1h or 2d (got ${JSON.stringify(raw)})`);
  }
  return s;
}

export function oneOf<T extends string>(values: FlagValues, name: string, allowed: readonly T[]): T | undefined {
  const raw = values[name];
  if (raw === undefined) return undefined;
  if (!allowed.includes(raw as T)) throw new UsageError(`--${name} must be one of ${allowed.join(", ")} (got ${JSON.stringify(raw)})`);
  return raw as T;
}
