import * as fs from "node:fs";
import * as path from "node:path";
import * as YAML from "yaml";
import { RawStackConfig } from "./config";

/**
 * Reads `Pulumi.<stack>.yaml` the way the Pulumi CLI hands it to a program: values as strings, maps
 * and lists as JSON, and the keys holding `secure:` ciphertext marked secret. bake-ami and the local
 * fleet use it; they never need a secret's plaintext, so ciphertext stays a placeholder.
 */
export const SECURE_PLACEHOLDER = "[secure]";

export function stackFilePath(dir: string, stack: string): string {
  if (!/^[A-Za-z0-9_.-]+$/.test(stack)) {
    throw new Error(`"${stack}" is not a stack name: use letters, digits, "-", "_" or "."`);
  }
  return path.join(dir, `Pulumi.${stack}.yaml`);
}

function isSecure(v: unknown): boolean {
  return typeof v === "object" && v !== null && !Array.isArray(v) && Object.keys(v).length === 1 && "secure" in v;
}

/** Replaces every `{secure: ...}` with a placeholder; says whether there was one. */
function stripSecure(v: unknown): { value: unknown; secret: boolean } {
  if (isSecure(v)) return { value: SECURE_PLACEHOLDER, secret: true };
  if (Array.isArray(v)) {
    const items = v.map(stripSecure);
    return { value: items.map((i) => i.value), secret: items.some((i) => i.secret) };
  }
  if (typeof v === "object" && v !== null) {
    let secret = false;
    const out: Record<string, unknown> = {};
    for (const [k, item] of Object.entries(v)) {
      const s = stripSecure(item);
      out[k] = s.value;
      secret ||= s.secret;
    }
    return { value: out, secret };
  }
  return { value: v, secret: false };
}

/** Turns a parsed stack file's `config:` map into what a Pulumi program receives. */
export function rawConfigOf(config: Record<string, unknown>): RawStackConfig {
  const values: Record<string, string> = {};
  const secretKeys = new Set<string>();
  for (const [key, v] of Object.entries(config)) {
    const { value, secret } = stripSecure(v);
    if (secret) secretKeys.add(key);
    values[key] = typeof value === "object" && value !== null ? JSON.stringify(value) : String(value);
  }
  return { values, secretKeys };
}

export function readStackFile(dir: string, stack: string): { file: string; raw: RawStackConfig } {
  const file = stackFilePath(dir, stack);
  if (!fs.existsSync(file)) {
    const known = fs
      .readdirSync(dir)
      .map((f) => /^Pulumi\.(.+)\.yaml$/.exec(f)?.[1])
      .filter((s): s is string => Boolean(s));
    throw new Error(`No stack "${stack}": ${file} does not exist (stacks here: ${known.join(", ") || "none"})`);
  }
  const doc = YAML.parse(fs.readFileSync(file, "utf8")) as { config?: Record<string, unknown> } | null;
  return { file, raw: rawConfigOf(doc?.config ?? {}) };
}
