import { strict as assert } from "node:assert";
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { renderEnvFile, writeFileAtomic } from "../../../worker/env/env-file";
import { parseSystemdEnvFile } from "./systemd-env-file";
import { ENVIRONMENT_D_GENERATOR, parseWithSystemd } from "./systemd-environment-d";

/** Values an application's kiln:env / kiln:secretEnv may well hold, each hard for some naive writer. */
const AWKWARD: Record<string, string> = {
  SPACES: "two words  and   more",
  QUOTES: `she said "hi" and 'bye'`,
  BACKSLASHES: "C:\\temp\\new \\n not a newline, trailing \\",
  BACKTICK: "`uname -a`",
  MULTILINE: "-----BEGIN KEY-----\nabc\ndef\n-----END KEY-----\n",
  CRLF_TAB: "a\r\nb\tc",
  EDGES: "  padded  ",
  COMMENTISH: "#not a comment ;nor this",
  EQUALS: "a=b=c",
  UNICODE: "日本語のパスワード✓",
  CONTROL: "bell\x07 del\x7f",
  SHELLISH: "a && b || c; d > e < f | g",
  DOLLAR_SAFE: "price: 5$ each, $-x, a$ b, $. end$",
};
/** "$" followed by a name: the environment.d generator would expand these, EnvironmentFile= does not. */
const DOLLAR_NAMES: Record<string, string> = { DOLLAR_NAMES: "$HOME ${PATH} $$ $1 pa$$word$" };
const EMPTY: Record<string, string> = { EMPTY: "" };

describe("worker.env in systemd's EnvironmentFile= syntax", () => {
  it("round-trips awkward values through systemd's own parser (the environment.d generator)", function () {
    assert.ok(fs.existsSync(ENVIRONMENT_D_GENERATOR), `${ENVIRONMENT_D_GENERATOR} is missing: install Debian's systemd package (.ci/run does)`);
    const parsed = parseWithSystemd(renderEnvFile(AWKWARD, ["a header"]));
    for (const [name, value] of Object.entries(AWKWARD)) assert.equal(parsed.get(name), value, name);
  });

  it("would catch a writer that does not quote: the same check fails for NAME=value lines", () => {
    const naive = Object.entries(AWKWARD).map(([k, v]) => `${k}=${v}`).join("\n") + "\n";
    const parsed = parseWithSystemd(naive);
    const broken = Object.keys(AWKWARD).filter((k) => parsed.get(k) !== AWKWARD[k]);
    // BACKTICK is fine by itself: BACKSLASHES' trailing backslash swallows the line it is on.
    assert.deepEqual(broken, ["BACKSLASHES", "BACKTICK", "MULTILINE", "CRLF_TAB", "EDGES"]);
  });

  it("round-trips every value, $NAME and empty included, through a transcription of systemd 252's parser", () => {
    const all = { ...AWKWARD, ...DOLLAR_NAMES, ...EMPTY };
    const text = renderEnvFile(all, ["a header ending in a backslash \\"]);
    assert.deepEqual(Object.fromEntries(parseSystemdEnvFile(text)), all);
  });

  it("agrees with systemd's parser wherever the generator does not expand", () => {
    const naive = Object.entries(AWKWARD).map(([k, v]) => `${k}=${v}`).join("\n") + "\n";
    for (const text of [renderEnvFile(AWKWARD), naive]) {
      assert.deepEqual(Object.fromEntries(parseSystemdEnvFile(text)), Object.fromEntries(parseWithSystemd(text)));
    }
  });

  it("can be sourced by sh as well, for an operator debugging with set -a; . /etc/kiln/worker.env", () => {
    const all = { ...AWKWARD, ...DOLLAR_NAMES, ...EMPTY };
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kiln-sh-"));
    try {
      fs.writeFileSync(path.join(dir, "worker.env"), renderEnvFile(all, ["a header"]));
      const out = execFileSync("sh", ["-c", 'set -a; . "$1"; env -0', "sh", path.join(dir, "worker.env")], { env: {} });
      const env = new Map(out.toString("utf8").split("\0").filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]));
      for (const [name, value] of Object.entries(all)) assert.equal(env.get(name), value, name);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("refuses what an environment cannot hold, naming the variable and not the value", () => {
    assert.throws(() => renderEnvFile({ "BAD-NAME": "x" }), /BAD-NAME is not a valid environment variable name/);
    assert.throws(
      () => renderEnvFile({ TOKEN: "sec\0ret" }),
      (e: Error) => /TOKEN contains a NUL/.test(e.message) && !e.message.includes("sec"),
    );
  });
});

describe("writing a file atomically", () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), "kiln-atomic-"))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const entries = () => fs.readdirSync(dir).sort();

  it("creates the file with the mode asked for whatever the umask, creating its directory, leaving no temp file", async () => {
    const file = path.join(dir, "etc", "kiln", "worker.env");
    const umask = process.umask(0o077);
    try {
      await writeFileAtomic(file, "A=1\n", 0o640);
    } finally {
      process.umask(umask);
    }
    assert.equal(fs.readFileSync(file, "utf8"), "A=1\n");
    assert.equal(fs.statSync(file).mode & 0o777, 0o640);
    assert.deepEqual(fs.readdirSync(path.dirname(file)), ["worker.env"]);
  });

  it("replaces an existing file's content and mode, so an old 0644 env file ends up 0600", async () => {
    const file = path.join(dir, "worker.env");
    fs.writeFileSync(file, "OLD=1\n", { mode: 0o644 });
    await writeFileAtomic(file, "NEW=1\n", 0o600);
    assert.equal(fs.readFileSync(file, "utf8"), "NEW=1\n");
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
  });

  it("leaves the old file intact and cleans up when the write fails before the rename", async () => {
    const file = path.join(dir, "worker.env");
    fs.writeFileSync(file, "OLD=1\n", { mode: 0o600 });
    let tmp = "";
    await assert.rejects(
      writeFileAtomic(file, "NEW=1\n", 0o600, {
        beforeRename(t) {
          tmp = t;
          assert.equal(fs.readFileSync(t, "utf8"), "NEW=1\n");
          assert.equal(fs.statSync(t).mode & 0o777, 0o600);
          throw new Error("disk full");
        },
      }),
      /disk full/,
    );
    assert.equal(path.dirname(tmp), dir, "the temp file must be in the same directory, so rename is atomic");
    assert.equal(fs.readFileSync(file, "utf8"), "OLD=1\n");
    assert.deepEqual(entries(), ["worker.env"]);
  });

  it("survives a process killed just before the rename: old content kept, the stray temp removed next time", async () => {
    const file = path.join(dir, "worker.env");
    fs.writeFileSync(file, "OLD=1\n", { mode: 0o600 });
    const script = `
      const { writeFileAtomic } = require(${JSON.stringify(path.resolve(__dirname, "../../../worker/env/env-file"))});
      writeFileAtomic(${JSON.stringify(file)}, "NEW=1\\n", 0o600, { beforeRename: () => process.kill(process.pid, "SIGKILL") });
    `;
    const child = spawnSync(process.execPath, ["--require", "tsx/cjs", "-e", script], { cwd: path.resolve(__dirname, "../../.."), encoding: "utf8" });
    assert.equal(child.signal, "SIGKILL", child.stderr);
    assert.equal(fs.readFileSync(file, "utf8"), "OLD=1\n");
    const stray = entries().filter((e) => e !== "worker.env");
    assert.equal(stray.length, 1, "the killed writer left its temp file");
    assert.equal(fs.statSync(path.join(dir, stray[0])).mode & 0o777, 0o600, "and even that was never readable by others");

    await writeFileAtomic(file, "NEWER=1\n", 0o600);
    assert.equal(fs.readFileSync(file, "utf8"), "NEWER=1\n");
    assert.deepEqual(entries(), ["worker.env"]);
  });
});
