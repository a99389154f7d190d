import * as fs from "node:fs";
import * as path from "node:path";
import * as YAML from "yaml";
import type { RawStackConfig } from "./config";
import { StackFileError } from "./config-errors";

/**
 * Reads `Pulumi.<stack>.yaml` the way the Pulumi CLI hands it to a program: values as strings, maps
 * and lists as JSON, and the keys holding `secure:` ciphertext marked secret. bake-ami and the local
 * fleet use it; they never need a secret's plaintext, so ciphertext stays a placeholder. The Pulumi
 * program uses it too, for what the CLI does not pass on: which values inside a map are `secure:`.
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

/**
 * Replaces every `{secure: ...}` with a placeholder; says whether there was one, and for each leaf
 * below the top (`kiln:secretEnv.API_TOKEN`, `kiln:subnetIds[0]`) whether it was secure.
 */
function stripSecure(v: unknown, at: string, leaves: Map<string, boolean>): { value: unknown; secret: boolean } {
  if (isSecure(v)) {
    leaves.set(at, true);
    return { value: SECURE_PLACEHOLDER, secret: true };
  }
  if (Array.isArray(v)) {
    const items = v.map((item, i) => stripSecure(item, `${at}[${i}]`, leaves));
    return { value: items.map((i) => i.value), secret: items.some((i) => i.secret) };
  }
  if (typeof v === "object" && v !== null) {
    let secret = false;
    const out: Record<string, unknown> = {};
    for (const [k, item] of Object.entries(v)) {
      const s = stripSecure(item, `${at}.${k}`, leaves);
      out[k] = s.value;
      secret ||= s.secret;
    }
    return { value: out, secret };
  }
  leaves.set(at, false);
  return { value: v, secret: false };
}

/** Turns a parsed stack file's `config:` map into what a Pulumi program receives. */
export function rawConfigOf(config: Record<string, unknown>): RawStackConfig {
  const values: Record<string, string> = {};
  const secretKeys = new Set<string>();
  const secretLeaves = new Map<string, boolean>();
  for (const [key, v] of Object.entries(config)) {
    const leaves = new Map<string, boolean>();
    const { value, secret } = stripSecure(v, key, leaves);
    if (secret) secretKeys.add(key);
    // Only what lies inside a map or list: a top-level key's secrecy is secretKeys.
    for (const [p, s] of leaves) if (p !== key) secretLeaves.set(p, s);
    values[key] = typeof value === "object" && value !== null ? JSON.stringify(value) : String(value);
  }
  return { values, secretKeys, secretLeaves };
}

/** A YAML error's own words, without the position and code frame the yaml library appends. */
function firstLine(message: string): string {
  return message.split("\n")[0].replace(/ at line \d+, column \d+:?$/, "");
}

/**
 * Parses a stack file's text. Anything that is not a stack file, from a YAML syntax error to a
 * `config:` that is not a map, is one StackFileError naming the file, line and column.
 */
export function parseStackFileText(text: string, file: string, stack: string): RawStackConfig {
  const lineCounter = new YAML.LineCounter();
  const doc = YAML.parseDocument(text, { lineCounter });
  const name = path.basename(file);
  const error = doc.errors[0];
  if (error) {
    const pos = error.linePos?.[0] ?? { line: 1, col: 1 };
    throw new StackFileError(stack, name, pos.line, pos.col, firstLine(error.message));
  }
  const at = (node: unknown) => {
    const offset = YAML.isNode(node) && node.range ? node.range[0] : 0;
    return lineCounter.linePos(offset);
  };
  const contents = doc.contents;
  if (contents !== null && !YAML.isMap(contents)) {
    const { line, col } = at(contents);
    throw new StackFileError(stack, name, line, col, "a stack file is a map with a config: key");
  }
  const config = YAML.isMap(contents) ? contents.get("config", true) : undefined;
  if (config === undefined || config === null || (YAML.isScalar(config) && config.value === null)) return rawConfigOf({});
  if (!YAML.isMap(config)) {
    const { line, col } = at(config);
    throw new StackFileError(stack, name, line, col, "config: must be a map of namespace:key: value");
  }
  return rawConfigOf(config.toJS(doc) as Record<string, unknown>);
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
  return { file, raw: parseStackFileText(fs.readFileSync(file, "utf8"), file, stack) };
}
