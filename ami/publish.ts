import * as fs from "node:fs";
import * as path from "node:path";
import * as YAML from "yaml";
import { stackFilePath } from "../infra/stack-file";

/**
 * Records a baked image in `Pulumi.<stack>.yaml` as `kiln:amiId`, editing the document rather than
 * rewriting it: comments, key order, `secure:` ciphertext and every other value stay as they were.
 * Written to a temporary file and renamed, so an interrupted write never leaves half a stack file.
 */
export function recordAmiId(dir: string, stack: string, amiId: string): { file: string; previous?: string } {
  if (!/^ami-([0-9a-f]{8}|[0-9a-f]{17})$/.test(amiId)) throw new Error(`refusing to record ${JSON.stringify(amiId)}: not an AMI id`);
  const file = stackFilePath(dir, stack);
  const text = fs.readFileSync(file, "utf8");
  const doc = YAML.parseDocument(text);
  if (doc.errors.length) throw new Error(`${path.basename(file)} is not valid YAML: ${doc.errors[0].message}`);
  let config = doc.get("config", true);
  if (!YAML.isMap(config)) {
    doc.set("config", doc.createNode({}));
    config = doc.get("config", true);
  }
  const map = config as YAML.YAMLMap;
  const previous = map.get("kiln:amiId");
  map.set("kiln:amiId", amiId);
  const out = doc.toString({ lineWidth: 0 });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, out, { mode: fs.statSync(file).mode & 0o777 });
  fs.renameSync(tmp, file);
  return { file, previous: typeof previous === "string" && previous ? previous : undefined };
}

export interface BakeManifest {
  ami: string;
  region: string;
  /** Region → the copy of the image there (kiln:bake.copyRegions). */
  copies: Record<string, string>;
  /** Accounts allowed to launch it (kiln:bake.shareAccounts). */
  sharedWith: string[];
  stack: string;
  name?: string;
  contentHash?: string;
  baseImage?: string;
  gitCommit?: string;
  reused: boolean;
  builtAt: string;
  steps: { name: string; status: string; ms: number }[];
  /** What this bake created and could not remove (exit code 3): clean these up, or --reap. */
  leftBehind: { step: string; error: string }[];
}

/** The bake's record for CI and for people: what was made, from what, and how long each step took. */
export function writeManifest(file: string, manifest: BakeManifest): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(manifest, null, 2) + "\n");
}
