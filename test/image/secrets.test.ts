import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { defaultCacheDir, fetchNodeRuntime } from "../../ami/payload";
import type { BakeState } from "../../ami/state";
import { StepError } from "../../ami/step";
import { SCAN_IGNORE_FILE, stepClean } from "../../ami/steps/clean";
import { stepWaitForSsh } from "../../ami/steps/wait-for-ssh";
import { INSTALL } from "../../worker/contract";
import { BuilderHost, recordingContext, sshBakeState } from "../support/builder-host";
import { REPO } from "../support/pulumi-harness";

/** Credentials that look real to a scanner, fresh each run. */
const alnum = (n: number, chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") => Array.from(randomBytes(n), (b) => chars[b % chars.length]).join("");
const aws = () => ({ id: `AKIA${alnum(16)}`, secret: alnum(40, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") });
const github = () => `ghp_${alnum(36, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")}`;
const npm = () => `npm_${alnum(36, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")}`;
/** A real private key, as a deploy key left on a builder would be. */
function privateKey(dir: string): string {
  const file = path.join(dir, `planted_${alnum(6)}`);
  spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "", "-f", file]);
  return fs.readFileSync(file, "utf8");
}

/** A unique string per planted file: searched for in the raw file system afterwards. */
const marker = (name: string) => `KILNPLANTED${name.replace(/[^A-Za-z0-9]/g, "")}${alnum(8)}`;

/**
 * clean.sh and the secret scan on the debootstrap builder root, as the clean step runs them over SSH:
 * the credential paths that survived the old clean, more of the same classes, and secrets in places
 * no list covers. Two of the builder's directories are ext4 file systems of their own (loop devices),
 * read raw afterwards: what clean removed must not be in their blocks either.
 */
describe("the image's clean and secret scan, on a builder with credentials planted", function () {
  this.timeout(10 * 60_000);
  let host: BuilderHost;
  const lines: string[] = [];
  let failure: unknown;
  const disks: { image: string; mountPoint: string }[] = [];
  const planted = new Map<string, string>();
  const survivors = new Map<string, string>();
  let control = "";

  const put = (p: string, text: string, mode = 0o600) => {
    fs.mkdirSync(path.dirname(host.path(p)), { recursive: true });
    fs.writeFileSync(host.path(p), text, { mode });
  };
  /** A file clean must remove; its marker must leave the disk with it. */
  const plant = (p: string, text: (m: string) => string, mode?: number) => {
    const m = marker(p);
    planted.set(p, m);
    put(p, text(m), mode);
  };
  /** A secret clean does not know of: the scan must find it and name the file. */
  const hide = (p: string, text: string) => {
    survivors.set(p, text);
    put(p, text, 0o644);
  };

  before(async () => {
    host = await BuilderHost.start({ user: "admin" });
    // kiln's Node, which the scan runs with, as provisioning would have installed it.
    const tgz = await fetchNodeRuntime(process.arch === "arm64" ? "arm64" : "x86_64", defaultCacheDir(REPO));
    fs.mkdirSync(host.path(path.dirname(INSTALL.node)), { recursive: true });
    spawnSync("tar", ["-xzf", tgz, "-C", host.path(path.dirname(INSTALL.node)), "--strip-components=2", "package/bin/node"]);
    host.chroot(["useradd", "--create-home", "deploy"]);
    mountDisk("/home/deploy");
    mountDisk("/srv");
    host.chroot(["chown", "deploy:", "/home/deploy"]);

    const key = aws();
    // The 21 paths that survived the old clean.sh (issue 10).
    plant("/root/.npmrc", (m) => `//registry.npmjs.org/:_authToken=${npm()}\n# ${m}\n`);
    plant("/root/.git-credentials", (m) => `https://deploy:${github()}@github.com\n# ${m}\n`);
    plant("/root/.docker/config.json", (m) => `{"auths":{"https://index.docker.io/v1/":{"auth":"${Buffer.from(`u:${alnum(20)}`).toString("base64")}"}},"note":"${m}"}\n`);
    plant("/root/.netrc", (m) => `machine example.com login deploy password ${alnum(20)}\n# ${m}\n`);
    plant("/root/.pgpass", (m) => `db.internal:5432:files:app:${alnum(24)}\n# ${m}\n`);
    plant("/root/.kube/config", (m) => `apiVersion: v1\nusers:\n- name: admin\n  user:\n    token: ${alnum(40)}\n# ${m}\n`);
    plant("/root/.pypirc", (m) => `[pypi]\nusername = __token__\npassword = pypi-${alnum(60)}\n# ${m}\n`);
    plant("/root/.config/gh/hosts.yml", (m) => `github.com:\n  oauth_token: ${github()}\n# ${m}\n`);
    plant("/home/deploy/.ssh/id_ed25519", (m) => `${privateKey(host.dir)}# ${m}\n`);
    plant("/etc/pip.conf", (m) => `[global]\nindex-url = https://deploy:${alnum(20)}@pypi.internal/simple\n# ${m}\n`, 0o644);
    plant("/etc/apt/auth.conf.d/internal.conf", (m) => `machine apt.internal login deploy password ${alnum(20)}\n# ${m}\n`);
    plant("/var/lib/amazon/ssm/i-0123456789abcdef0/document/state/current/doc", (m) => `{"instance":"i-0123456789abcdef0","m":"${m}"}\n`);
    plant("/var/lib/amazon/ssm/Vault/Store/RegistrationKey", (m) => `{"instanceID":"mi-0123456789abcdef0","privateKey":"${alnum(60)}","m":"${m}"}\n`);
    plant("/opt/aws/amazon-cloudwatch-agent/logs/amazon-cloudwatch-agent.log", (m) => `2026-01-01T00:00:00Z I! token ${m}\n`, 0o644);
    plant("/swapfile", (m) => `${m}\n`.repeat(4096));
    plant("/tmp/..hidden-token", (m) => `${m}\n`);
    plant("/opt/file-processor/.env", (m) => `OPENSEARCH_PASSWORD=${alnum(20)}\n# ${m}\n`);
    plant("/opt/file-processor/credentials.json", (m) => `{"type":"service_account","private_key":"${alnum(40)}","m":"${m}"}\n`);
    plant("/root/.cache/pip/http/0/1/cached", (m) => `${m}\n`);
    plant("/root/.config/pip/pip.conf", (m) => `[global]\nindex-url = https://deploy:${alnum(20)}@pypi.internal/simple\n# ${m}\n`);
    // /etc/environment keeps its other lines; the exports of credentials go.
    put("/etc/environment", `PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"\nexport AWS_ACCESS_KEY_ID=${key.id}\nAWS_SECRET_ACCESS_KEY=${key.secret}\nGITHUB_TOKEN=${github()}\nLANG=C.UTF-8\n`, 0o644);
    // More of the same classes.
    plant("/root/.aws/credentials", (m) => `[default]\naws_access_key_id = ${key.id}\naws_secret_access_key = ${key.secret}\n# ${m}\n`);
    plant("/home/deploy/.bash_history", (m) => `export GITHUB_TOKEN=${github()} # ${m}\n`);
    plant("/home/deploy/.aws/credentials", (m) => `[default]\naws_secret_access_key = ${key.secret}\n# ${m}\n`);
    plant("/home/deploy/.npmrc", (m) => `//registry.npmjs.org/:_authToken=${npm()}\n# ${m}\n`);
    plant("/home/deploy/.ssh/known_hosts", (m) => `github.com ssh-ed25519 AAAA # ${m}\n`);
    plant("/home/admin/.vault-token", (m) => `hvs.${alnum(24)} ${m}\n`);
    plant("/home/admin/.config/gcloud/credentials.db", (m) => `${m}\n`);
    plant("/root/.gnupg/private-keys-v1.d/key.key", (m) => `${m}\n`);
    plant("/root/.npm/_cacache/index-v5/00/cached", (m) => `${m}\n`);
    plant("/etc/apt/auth.conf", (m) => `machine apt.internal password ${alnum(20)} # ${m}\n`);
    plant("/srv/app/.env.production", (m) => `DB_PASSWORD=${alnum(20)}\n# ${m}\n`);
    plant("/srv/app/.git-credentials", (m) => `https://ci:${github()}@github.com # ${m}\n`);
    plant("/opt/file-processor/.npmrc", (m) => `//registry.npmjs.org/:_authToken=${npm()}\n# ${m}\n`);
    plant("/tmp/.X0-lock-token", (m) => `${m}\n`);
    plant("/var/tmp/upload.part", (m) => `${m}\n`);
    plant("/var/lib/systemd/random-seed", (m) => `${m}\n`);
    plant("/var/lib/systemd/credential.secret", (m) => `${m}\n`);
    plant("/var/log/journal/0123456789abcdef0123456789abcdef/system.journal", (m) => `${m}\n`, 0o640);
    plant("/var/log/auth.log.1", (m) => `Accepted publickey for admin from 198.51.100.7 ${m}\n`, 0o640);
    // An application's examples stay: nothing secret in them by convention.
    put("/srv/app/.env.example", "DB_PASSWORD=\n", 0o644);
    // On disk before the clean, as on a builder that ran for minutes (ext4 allocates late).
    spawnSync("sync");
    // A file the old clean removed with rm: its blocks are what a snapshot would keep.
    control = marker("control");
    put("/srv/control.txt", `${control}\n`);
    spawnSync("sync");
    fs.rmSync(host.path("/srv/control.txt"));
    // Secrets no path list knows: the scan must catch them.
    hide("/etc/file-processor/config.yaml", `aws:\n  access_key_id: ${key.id}\n  secret_access_key: ${key.secret}\n`);
    hide("/opt/file-processor/settings.py", `GITHUB_TOKEN = "${github()}"\n`);
    hide("/srv/keys/service.pem", privateKey(host.dir));
    hide("/var/lib/file-processor/state.json", `{"slack":"xoxb-${alnum(11, "0123456789")}-${alnum(12, "0123456789")}-${alnum(24, "abcdefghijklmnopqrstuvwxyz0123456789")}"}\n`);
    hide("/usr/local/etc/file-processor.ini", `[opensearch]\nurl = https://admin:${alnum(20)}@search.example.com/\n`);
    // An application's own test fixture, declared a false positive by its install script.
    hide("/opt/file-processor/tests/fixture.pem", privateKey(host.dir));
    put(SCAN_IGNORE_FILE, "# fixtures of the app's own test suite\n/opt/file-processor/tests/\n", 0o644);

    const state: BakeState = sshBakeState(REPO, host.target(), { sshTimeout: 30 });
    await stepWaitForSsh.run(state, recordingContext("wait-for-ssh", lines));
    try {
      await stepClean.run(state, recordingContext("clean", lines));
    } catch (e) {
      failure = e;
    } finally {
      state.connection?.dispose();
    }
  });

  after(async () => {
    for (const d of disks.reverse()) {
      spawnSync("umount", [d.mountPoint]);
      fs.rmSync(d.image, { force: true });
    }
    await host?.stop();
  });

  /** An ext4 file system of 32 MiB on a loop device, mounted at `inside` in the builder root. */
  function mountDisk(inside: string): void {
    const image = path.join(host.dir, `${inside.replace(/\//g, "_")}.ext4`);
    spawnSync("truncate", ["-s", "32M", image]);
    const mk = spawnSync("mkfs.ext4", ["-q", "-F", image], { encoding: "utf8" });
    assert.equal(mk.status, 0, mk.stderr);
    fs.mkdirSync(host.path(inside), { recursive: true });
    const mount = spawnSync("mount", ["-o", "loop", image, host.path(inside)], { encoding: "utf8" });
    assert.equal(mount.status, 0, mount.stderr);
    disks.push({ image, mountPoint: host.path(inside) });
  }

  it("fails the bake, naming every file with a secret no clean rule covers, and no other", () => {
    assert.ok(failure instanceof StepError, `clean passed:\n${lines.join("\n")}`);
    const reported = lines.filter((l) => l.startsWith("clean: found ")).map((l) => l.slice("clean: found ".length).split(":")[0]);
    const expected = [...survivors.keys()].filter((p) => !p.startsWith("/opt/file-processor/tests/")).sort();
    assert.deepEqual([...new Set(reported)].sort(), expected, lines.join("\n"));
    assert.match(failure.message, /the secret scan found \d+ credential\(s\) in 5 file\(s\) the image would hold: /);
    for (const p of expected) assert.ok(failure.message.includes(p), p);
  });

  it("never prints a secret's value, only where it is and which rule matched", () => {
    const output = `${lines.join("\n")}\n${(failure as Error).message}\n${(failure as StepError).hint ?? ""}`;
    for (const [p, text] of survivors) {
      for (const token of text.match(/[A-Za-z0-9+/_-]{20,}/g) ?? []) assert.ok(!output.includes(token), `${p}'s value is in the output`);
    }
    assert.ok(lines.some((l) => /^clean: found \/srv\/keys\/service\.pem:1:1 @secretlint\/secretlint-rule-privatekey \w+$/.test(l)), lines.join("\n"));
  });

  it("skips what the ignore file lists", () => {
    assert.ok(!lines.some((l) => l.includes("/opt/file-processor/tests/")));
    assert.match(lines.find((l) => l.startsWith("clean: secret scan:"))!, /, 1 ignored\)/);
  });

  it("removes every credential path that survived the old clean, and more of their kind", () => {
    const left = [...planted.keys()].filter((p) => p !== "/swapfile" && fs.existsSync(host.path(p)));
    assert.deepEqual(left, []);
    assert.ok(fs.existsSync(host.path("/srv/app/.env.example")), "examples are not credentials");
    assert.deepEqual(fs.readdirSync(host.path("/tmp")), [], "/tmp, names starting with .. included");
    assert.deepEqual(fs.readdirSync(host.path("/var/lib/amazon/ssm")), []);
  });

  it("keeps /etc/environment's other lines, dropping the credentials, and says which by name only", () => {
    assert.equal(fs.readFileSync(host.path("/etc/environment"), "utf8"), 'PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"\nLANG=C.UTF-8\n');
    assert.ok(lines.includes("clean: /etc/environment: removed AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY GITHUB_TOKEN"), lines.join("\n"));
  });

  it("zeroes the swap file and makes it a swap file again, so /etc/fstab still finds it", () => {
    const swap = fs.readFileSync(host.path("/swapfile"));
    assert.ok(!swap.includes(planted.get("/swapfile")!), "memory contents in the swap file");
    assert.equal(swap.subarray(4086, 4096).toString(), "SWAPSPACE2", "mkswap's signature at the end of the first page");
  });

  it("overwrites before removing: the removed files' contents are not on the disk, unlike a plain rm's", () => {
    spawnSync("sync");
    for (const d of disks) assert.equal(spawnSync("umount", [d.mountPoint]).status, 0);
    disks.splice(0).forEach((d) => disks.push({ ...d, mountPoint: "" }));
    const raw = Buffer.concat(disks.map((d) => fs.readFileSync(d.image)));
    assert.ok(raw.includes(control), "the control file removed with rm is still on the disk: the check can see removed data");
    const onDisks = [...planted].filter(([p]) => p.startsWith("/home/deploy/") || p.startsWith("/srv/"));
    assert.ok(onDisks.length >= 6, onDisks.map(([p]) => p).join(" "));
    for (const [p, m] of onDisks) assert.ok(!raw.includes(m), `${p}: its content is still in the file system's blocks`);
  });
});
