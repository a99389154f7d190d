import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { listPayloadFiles } from "./payload";

/**
 * What an image is made from, as one hash: every file of the payload (bundle, units, Node runtime,
 * provisioning scripts) by relative path and content, plus the base image and the settings that
 * change the result. Equal hashes mean an equal image, so a bake with nothing changed reuses it.
 */
export function contentHash(payloadDir: string, inputs: Record<string, string | number>): string {
  const hash = createHash("sha256");
  for (const file of listPayloadFiles(payloadDir)) {
    const full = path.join(payloadDir, file);
    const stat = fs.statSync(full);
    // Modes matter: a script that lost its execute bit makes a different image.
    hash.update(`file ${file} ${(stat.mode & 0o777).toString(8)} ${stat.size}\n`);
    hash.update(fs.readFileSync(full));
  }
  for (const key of Object.keys(inputs).sort()) hash.update(`input ${key}=${inputs[key]}\n`);
  return hash.digest("hex");
}
