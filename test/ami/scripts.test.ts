import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { SELF_CHECK_SCRIPT, VERIFY_SCRIPT } from "../../ami/steps/validate";

const ROOT = path.resolve(__dirname, "../..");
const SCRIPTS = path.join(ROOT, "ami", "scripts");
const SKIP = new Set(["node_modules", ".git", "dist", ".kiln"]);

/** Every shell script in the repository: *.sh, and files whose shebang names sh or bash (.ci/run). */
function shellScripts(dir = ROOT): string[] {
  const out: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (!SKIP.has(entry.name)) out.push(...shellScripts(full));
    } else if (entry.isFile()) {
      if (entry.name.endsWith(".sh")) out.push(full);
      else if (/^#!\s*\S*\/(env\s+)?(ba|da)?sh\b/.test(fs.readFileSync(full, "utf8").slice(0, 100))) out.push(full);
    }
  }
  return out.sort();
}

function provisionScripts(): string[] {
  return fs.readdirSync(path.join(SCRIPTS, "provision")).sort().map((f) => path.join(SCRIPTS, "provision", f));
}

describe("shell scripts", () => {
  it("finds the bake's scripts and .ci/run", () => {
    const found = shellScripts().map((f) => path.relative(ROOT, f));
    assert.ok(found.includes(".ci/run"), found.join(" "));
    assert.ok(found.includes("ami/scripts/clean.sh"), found.join(" "));
    assert.ok(found.filter((f) => f.startsWith("ami/scripts/provision/")).length >= 7, found.join(" "));
  });

  it("are shellcheck-clean, not one finding of any severity", () => {
    const r = spawnSync("shellcheck", ["--format=gcc", "--severity=style", ...shellScripts()], { encoding: "utf8" });
    assert.ifError(r.error);
    assert.equal(r.status, 0, `shellcheck:\n${r.stdout}${r.stderr}`);
    assert.equal(r.stdout, "");
  });

  it("run inline by the steps are shellcheck-clean too", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kiln-inline-sh-"));
    try {
      const files = Object.entries({ "self-check": SELF_CHECK_SCRIPT, verify: VERIFY_SCRIPT }).map(([name, text]) => {
        const file = path.join(dir, `${name}.sh`);
        fs.writeFileSync(file, `#!/bin/sh\n${text}`);
        return file;
      });
      const r = spawnSync("shellcheck", ["--format=gcc", "--severity=style", ...files], { encoding: "utf8" });
      assert.ifError(r.error);
      assert.equal(r.status, 0, `shellcheck:\n${r.stdout}${r.stderr}`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("on the builder are POSIX sh with set -eu, each provision script numbered and titled", () => {
    for (const file of [...provisionScripts(), path.join(SCRIPTS, "clean.sh")]) {
      const text = fs.readFileSync(file, "utf8");
      const name = path.relative(SCRIPTS, file);
      assert.match(text, /^#!\/bin\/sh\n/, `${name}: #!/bin/sh, so shellcheck holds it to POSIX (dash on Debian)`);
      assert.match(text, /^set -eu$/m, `${name}: set -eu`);
    }
    for (const file of provisionScripts()) {
      const name = path.basename(file);
      assert.match(name, /^\d{2}-[a-z0-9-]+\.sh$/, `${name}: NN-what.sh`);
      assert.match(fs.readFileSync(file, "utf8"), /^# step: \S.+$/m, `${name}: a "# step:" title for the step counter`);
      assert.ok(fs.statSync(file).mode & 0o100, `${name} is executable`);
    }
  });
});
