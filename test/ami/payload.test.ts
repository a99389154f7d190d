import { strict as assert } from "node:assert";
import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { pipeline } from "node:stream/promises";
import {
  Architecture,
  defaultCacheDir,
  fetchNodeRuntime,
  integrityOf,
  listPayloadFiles,
  NODE_PACKAGES,
  NODE_VERSION,
  payloadArchitecture,
  preparePayload,
} from "../../ami/payload";
import { tarStream } from "../../ami/tar";

const ROOT = path.resolve(__dirname, "../..");
const HOST_ARCH: Architecture = process.arch === "arm64" ? "arm64" : "x86_64";

function digest(dir: string): Record<string, string> {
  return Object.fromEntries(
    listPayloadFiles(dir).map((f) => {
      const full = path.join(dir, f);
      return [f, `${(fs.statSync(full).mode & 0o777).toString(8)} ${createHash("sha256").update(fs.readFileSync(full)).digest("hex")}`];
    }),
  );
}

describe("the payload", function () {
  this.timeout(5 * 60_000);
  let dir: string;

  before(async () => {
    dir = await preparePayload(ROOT, HOST_ARCH, defaultCacheDir(ROOT));
  });

  it("holds the worker bundle, its units and examples, the Node runtime and the scripts", () => {
    const files = listPayloadFiles(dir);
    for (const f of [
      "worker/kiln-worker.js",
      "worker/kiln-worker.js.map",
      "worker/systemd/kiln-worker.service",
      "worker/systemd/kiln-worker-env.service",
      "worker/systemd/kiln-worker-failed@.service",
      "node/bin/node",
      "node/VERSION",
      "scripts/clean.sh",
      "scripts/provision/10-user.sh",
    ]) {
      assert.ok(files.includes(f), `${f} missing from ${files.join(" ")}`);
    }
    assert.deepEqual(files, [...files].sort(), "sorted");
    assert.equal(fs.readFileSync(path.join(dir, "node", "VERSION"), "utf8"), `v${NODE_VERSION}\n${NODE_PACKAGES[HOST_ARCH].platform}\n`);
    assert.equal(payloadArchitecture(dir), HOST_ARCH);
    assert.equal(execFileSync(path.join(dir, "node", "bin", "node"), ["--version"], { encoding: "utf8" }).trim(), `v${NODE_VERSION}`);
  });

  it("has only 0755 and 0644 files: executables and scripts 0755", () => {
    const d = digest(dir);
    for (const [file, entry] of Object.entries(d)) assert.match(entry, /^(755|644) /, file);
    for (const f of ["node/bin/node", "worker/kiln-worker.js", "scripts/clean.sh", "scripts/provision/50-units.sh"]) assert.match(d[f], /^755 /, f);
  });

  it("is the same, file for file, when prepared again from the same sources", async () => {
    const before = digest(dir);
    const again = await preparePayload(ROOT, HOST_ARCH, defaultCacheDir(ROOT));
    assert.equal(again, dir);
    assert.deepEqual(digest(again), before);
    assert.deepEqual(
      fs.readdirSync(path.dirname(dir)).filter((f) => f.includes(".tmp-") || f.includes(".old-")),
      [],
      "no half-built payload left beside it",
    );
  });

  it("goes to the builder as a tar that keeps modes and contents, whatever the path length", async () => {
    const work = fs.mkdtempSync(path.join(os.tmpdir(), "kiln-tar-"));
    try {
      const src = path.join(work, "src");
      const long = `${"deep/".repeat(30)}file-with-a-rather-long-name-${"x".repeat(60)}.sh`;
      fs.mkdirSync(path.join(src, path.dirname(long)), { recursive: true });
      fs.writeFileSync(path.join(src, long), "#!/bin/sh\n", { mode: 0o755 });
      fs.writeFileSync(path.join(src, "empty"), "", { mode: 0o600 });
      fs.writeFileSync(path.join(src, "odd"), Buffer.alloc(1234, 7), { mode: 0o644 });
      const files = ["empty", "odd", long];
      await pipeline(tarStream(src, files), fs.createWriteStream(path.join(work, "a.tar")));
      const out = path.join(work, "out");
      fs.mkdirSync(out);
      const r = spawnSync("tar", ["-xf", path.join(work, "a.tar"), "-C", out], { encoding: "utf8" });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stderr, "", "GNU tar has no complaint");
      for (const f of files) {
        assert.ok(fs.readFileSync(path.join(out, f)).equals(fs.readFileSync(path.join(src, f))), f);
        assert.equal(fs.statSync(path.join(out, f)).mode & 0o777, fs.statSync(path.join(src, f)).mode & 0o777, f);
      }
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
  });
});

describe("the pinned Node runtime", function () {
  this.timeout(5 * 60_000);

  it("pins the registry's own dist.integrity for both architectures", () => {
    for (const pkg of Object.values(NODE_PACKAGES)) {
      const integrity = execFileSync("npm", ["view", `${pkg.name}@${NODE_VERSION}`, "dist.integrity"], { encoding: "utf8" }).trim();
      assert.equal(integrity, pkg.integrity, pkg.name);
    }
  });

  it("replaces a corrupt cached tarball with a verified download", async () => {
    const cache = fs.mkdtempSync(path.join(os.tmpdir(), "kiln-node-cache-"));
    try {
      const pkg = NODE_PACKAGES[HOST_ARCH];
      const cached = path.join(cache, `${pkg.name}-${NODE_VERSION}.tgz`);
      // A copy of the good one, so this costs no second download... then damaged.
      fs.copyFileSync(await fetchNodeRuntime(HOST_ARCH, defaultCacheDir(ROOT)), cached);
      fs.appendFileSync(cached, "tampered");
      const tgz = await fetchNodeRuntime(HOST_ARCH, cache);
      assert.equal(tgz, cached);
      assert.equal(await integrityOf(tgz), pkg.integrity);
      assert.deepEqual(fs.readdirSync(cache), [path.basename(cached)], "no download left half way");
    } finally {
      fs.rmSync(cache, { recursive: true, force: true });
    }
  });
});
