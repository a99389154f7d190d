import { ChildProcess, spawn, spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { EC2Client } from "@aws-sdk/client-ec2";
import { SSMClient } from "@aws-sdk/client-ssm";
import type { BakeSettings, BakeState, SshTarget } from "../../ami/state";
import type { StepContext } from "../../ami/step";
import { INSTALL } from "../../worker/contract";

/**
 * A builder host for tests: a Debian root made by debootstrap, with its own sshd on 127.0.0.1,
 * standing in for the EC2 builder so provisioning and cleanup run for real without touching this
 * machine. The root is built once per machine (suite + package list) and kept as a tar under
 * /var/cache/kiln-test; every test gets a fresh copy and removes it.
 */

const SUITE = process.env.KILN_TEST_DEBIAN_SUITE ?? "bookworm";
const MIRROR = process.env.KILN_TEST_DEBIAN_MIRROR ?? "http://deb.debian.org/debian";
/**
 * sudo: the test logs in as a non-root user, like ec2-user or admin on a real builder. python3 and
 * python3-venv: the prod stack's application (worker/examples/file-processor) builds its venv.
 * No libnss-systemd, as on minimal images: units with DynamicUser= must not depend on it.
 */
export const BUILDER_PACKAGES = ["openssh-server", "systemd", "sudo", "python3", "python3-venv"];
/**
 * The image the boot test starts (test/image): the builder's packages and cloud-init, which reads
 * the stack's user data at boot as on EC2. Not in the builder's root: wait-for-ssh waits for
 * cloud-init to finish, and on a chroot that never booted it never does.
 */
export const BOOTABLE_PACKAGES = [...BUILDER_PACKAGES, "cloud-init"];
const VARIANT = "minbase";
export const CACHE_DIR = process.env.KILN_TEST_CACHE ?? "/var/cache/kiln-test";

type Log = (line: string) => void;

/**
 * The cached root tarball for this machine and package set, built first if missing: the builder's
 * packages by debootstrap, anything more installed on top of that root by apt, which (unlike
 * debootstrap) resolves virtual packages such as cloud-init's dependencies need.
 */
export async function debianRoot(log: Log = () => undefined, packages: string[] = BUILDER_PACKAGES): Promise<string> {
  const arch = run("dpkg", ["--print-architecture"]).stdout.trim();
  const PACKAGES = [...new Set(packages)].sort();
  const key = createHash("sha256").update(JSON.stringify({ SUITE, VARIANT, PACKAGES, arch, layout: 1 })).digest("hex").slice(0, 12);
  const tarball = path.join(CACHE_DIR, `debootstrap-${SUITE}-${arch}-${key}.tar`);
  if (fs.existsSync(tarball)) return tarball;
  const extra = PACKAGES.filter((p) => !BUILDER_PACKAGES.includes(p));
  const base = extra.length ? await debianRoot(log, BUILDER_PACKAGES) : undefined;

  if (spawnSync("debootstrap", ["--version"]).error) throw new Error("debootstrap is not installed: .ci/run installs it (apt-get install debootstrap)");
  await checkMirror();
  const debs = path.join(CACHE_DIR, "debs");
  fs.mkdirSync(debs, { recursive: true });
  const work = fs.mkdtempSync(path.join(CACHE_DIR, "build-"));
  const target = path.join(work, "root");
  const t0 = Date.now();
  try {
    if (base) {
      log(`${SUITE} root + ${extra.join(", ")} from ${MIRROR}: first build on this machine`);
      fs.mkdirSync(target);
      run("tar", ["--numeric-owner", "-xpf", base, "-C", target]);
      aptInstall(target, debs, extra);
    } else {
      log(`debootstrap ${SUITE} (${VARIANT} + ${PACKAGES.join(", ")}) from ${MIRROR}: first build on this machine`);
      const r = spawnSync("debootstrap", [`--variant=${VARIANT}`, `--include=${PACKAGES.join(",")}`, `--cache-dir=${debs}`, SUITE, target, MIRROR], {
        encoding: "utf8",
        maxBuffer: 64 << 20,
      });
      if (r.status !== 0) {
        const detail = tail(path.join(target, "debootstrap", "debootstrap.log")) || (r.stderr + r.stdout).split("\n").slice(-20).join("\n");
        throw new Error(`debootstrap ${SUITE} from ${MIRROR} failed (exit ${r.status}):\n${detail}`);
      }
      run("chroot", [target, "apt-get", "clean"]);
    }
    const tmpTar = `${tarball}.tmp-${process.pid}`;
    run("tar", ["--numeric-owner", "-cf", tmpTar, "-C", target, "."]);
    fs.renameSync(tmpTar, tarball);
    log(`${SUITE} root: built in ${((Date.now() - t0) / 1000).toFixed(1)} s, cached as ${tarball}`);
    return tarball;
  } finally {
    // A failed debootstrap or apt can leave its proc, dev and cache mounted in the target.
    for (const mountPoint of mountsBelow(work)) unmount(mountPoint);
    removeTree(work);
  }
}

/**
 * apt-get install in a chroot: packages come through the shared .deb cache, and a policy-rc.d
 * keeps their postinst scripts from starting services (there is no init to start them).
 */
function aptInstall(target: string, debs: string, packages: string[]): void {
  const inside = (p: string) => path.join(target, p);
  for (const [args, at] of [[["-t", "proc", "proc"], "/proc"], [["--bind", "/dev"], "/dev"], [["--bind", debs], "/var/cache/apt/archives"]] as const) {
    fs.mkdirSync(inside(at), { recursive: true });
    run("mount", [...args, inside(at)]);
  }
  fs.mkdirSync(path.join(debs, "partial"), { recursive: true });
  fs.writeFileSync(inside("/usr/sbin/policy-rc.d"), "#!/bin/sh\nexit 101\n", { mode: 0o755 });
  const apt = (args: string[]) => {
    const r = spawnSync("chroot", [target, "/usr/bin/env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND=noninteractive", "apt-get", "-q", "-y", ...args], {
      encoding: "utf8",
      maxBuffer: 64 << 20,
    });
    if (r.status !== 0) throw new Error(`apt-get ${args.join(" ")} in the ${SUITE} root failed (exit ${r.status}):\n${(r.stdout + r.stderr).split("\n").slice(-20).join("\n")}`);
  };
  try {
    apt(["update"]);
    apt(["install", "--no-install-recommends", ...packages]);
  } finally {
    fs.rmSync(inside("/usr/sbin/policy-rc.d"), { force: true });
    for (const at of ["/var/cache/apt/archives", "/dev", "/proc"]) unmount(inside(at));
  }
}

async function checkMirror(): Promise<void> {
  const url = `${MIRROR}/dists/${SUITE}/Release`;
  try {
    const res = await fetch(url, { method: "HEAD", signal: AbortSignal.timeout(20_000) });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
  } catch (e) {
    throw new Error(
      `the Debian mirror is unreachable (${url}: ${(e as Error).message}). The builder-host tests build their Debian root ` +
        `with debootstrap once per machine; set KILN_TEST_DEBIAN_MIRROR to a reachable mirror`,
    );
  }
}

export interface BuilderHostOptions {
  /** Who logs in: root, or a user with passwordless sudo (the default, like a cloud image's). */
  user?: string;
  /** Start sshd (default); without it, the root is only for chroot. */
  sshd?: boolean;
  /** Debian packages of the root (default BUILDER_PACKAGES); each set is cached on its own. */
  packages?: string[];
  log?: Log;
}

/** A fresh copy of the cached root with proc, dev and a tmpfs /run mounted, and sshd in it. */
export class BuilderHost {
  readonly user: string;
  port = 0;
  privateKey = "";
  private publicKey = "";
  private sshd?: ChildProcess;
  private sshdOutput = "";
  private readonly mounts: string[] = [];

  private constructor(
    /** The temporary directory holding the root and the client key. */
    readonly dir: string,
    user: string,
  ) {
    this.user = user;
  }

  /** The root's directory on this machine. */
  get root(): string {
    return path.join(this.dir, "root");
  }

  static async start(opts: BuilderHostOptions = {}): Promise<BuilderHost> {
    if (process.getuid?.() !== 0) throw new Error("the builder-host tests run as root: they mount proc and dev into a chroot");
    const tarball = await debianRoot(opts.log, opts.packages);
    const host = new BuilderHost(fs.mkdtempSync(path.join(os.tmpdir(), "kiln-builder-")), opts.user ?? "admin");
    try {
      fs.mkdirSync(host.root);
      run("tar", ["--numeric-owner", "-xpf", tarball, "-C", host.root]);
      host.mount(["-t", "proc", "proc"], "/proc");
      host.mount(["--bind", "/dev"], "/dev");
      host.mount(["-t", "tmpfs", "-o", "mode=0755", "tmpfs"], "/run");
      // sudo resolves the host name; without an entry it warns on every command.
      fs.writeFileSync(host.path("/etc/hosts"), `127.0.0.1 localhost\n127.0.1.1 ${os.hostname()}\n`);
      if (opts.sshd !== false) await host.startSshd();
      return host;
    } catch (e) {
      await host.stop();
      throw e;
    }
  }

  path(p: string): string {
    return path.join(this.root, p);
  }

  /** Runs a command inside the root (chroot), returning its status and output. */
  chroot(argv: string[], env: Record<string, string> = {}) {
    const r = spawnSync("chroot", [this.root, "/usr/bin/env", "-i", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", ...Object.entries(env).map(([k, v]) => `${k}=${v}`), ...argv], {
      encoding: "utf8",
      maxBuffer: 64 << 20,
    });
    if (r.error) throw r.error;
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  target(): SshTarget {
    return { host: "127.0.0.1", port: this.port, user: this.user, privateKey: this.privateKey };
  }

  /** What sshd wrote (-e): why a login was refused. */
  get sshdLog(): string {
    return this.sshdOutput;
  }

  /**
   * Makes the host reachable again after a clean step took its host keys and authorized_keys: a
   * test that bakes on the same host more than once calls it between bakes.
   */
  reauthorize(): void {
    // What an interrupted bake left running (a clean.sh the closed session did not stop, on a
    // builder that would have been terminated) must not remove the keys given back below.
    killProcessesIn(this.root, this.sshd?.pid);
    const home = this.user === "root" ? "/root" : `/home/${this.user}`;
    fs.mkdirSync(this.path(`${home}/.ssh`), { recursive: true, mode: 0o700 });
    fs.writeFileSync(this.path(`${home}/.ssh/authorized_keys`), this.publicKey, { mode: 0o600 });
    this.must(["chown", "-R", `${this.user}:`, `${home}/.ssh`]);
    if (!fs.existsSync(this.path("/etc/ssh/ssh_host_ed25519_key"))) this.must(["ssh-keygen", "-A"]);
  }

  private async startSshd(): Promise<void> {
    const keyFile = path.join(this.dir, "client_ed25519");
    run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "kiln-test", "-f", keyFile]);
    this.privateKey = fs.readFileSync(keyFile, "utf8");
    this.publicKey = fs.readFileSync(`${keyFile}.pub`, "utf8");

    if (this.user !== "root") {
      // "*", not useradd's "!": with UsePAM no, sshd refuses a locked account even with a key.
      this.must(["useradd", "--create-home", "--shell", "/bin/sh", "--password", "*", this.user]);
      fs.writeFileSync(this.path(`/etc/sudoers.d/90-${this.user}`), `${this.user} ALL=(ALL) NOPASSWD:ALL\n`, { mode: 0o440 });
    }
    this.reauthorize();
    fs.mkdirSync(this.path("/run/sshd"), { mode: 0o755 });

    this.port = await freePort();
    fs.writeFileSync(
      this.path("/etc/ssh/sshd_config.kiln-test"),
      [
        "ListenAddress 127.0.0.1",
        `Port ${this.port}`,
        "HostKey /etc/ssh/ssh_host_ed25519_key",
        "PidFile none",
        "AuthorizedKeysFile .ssh/authorized_keys",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PermitRootLogin prohibit-password",
        "UsePAM no",
        "StrictModes no",
        "Subsystem sftp internal-sftp",
        "LogLevel VERBOSE",
        "",
      ].join("\n"),
    );
    const sshd = spawn("chroot", [this.root, "/usr/sbin/sshd", "-D", "-e", "-f", "/etc/ssh/sshd_config.kiln-test"], { stdio: ["ignore", "pipe", "pipe"] });
    this.sshd = sshd;
    const collect = (b: Buffer) => {
      this.sshdOutput += b.toString();
      if (this.sshdOutput.length > 1 << 20) this.sshdOutput = this.sshdOutput.slice(-(1 << 19));
    };
    sshd.stdout!.on("data", collect);
    sshd.stderr!.on("data", collect);
    const deadline = Date.now() + 10_000;
    while (!(await accepts(this.port))) {
      if (sshd.exitCode !== null || sshd.signalCode !== null) throw new Error(`sshd exited at start:\n${this.sshdOutput}`);
      if (Date.now() > deadline) throw new Error(`sshd did not listen on 127.0.0.1:${this.port} within 10 s:\n${this.sshdOutput}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /**
   * Stops sshd and whatever its sessions left running in the root, unmounts everything below the
   * copy, and removes it; refuses to remove anything while a mount is left (a bound /dev would go
   * with it).
   */
  async stop(): Promise<void> {
    if (this.sshd && this.sshd.exitCode === null && this.sshd.signalCode === null) {
      const exited = new Promise((r) => this.sshd!.once("exit", r));
      this.sshd.kill("SIGTERM");
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000))]);
      if (this.sshd.exitCode === null && this.sshd.signalCode === null) this.sshd.kill("SIGKILL");
    }
    killProcessesIn(this.root);
    for (const mountPoint of mountsBelow(this.dir)) unmount(mountPoint);
    this.mounts.length = 0;
    removeTree(this.dir);
  }

  private mount(args: string[], inside: string): void {
    const target = this.path(inside);
    fs.mkdirSync(target, { recursive: true });
    run("mount", [...args, target]);
    this.mounts.push(target);
  }

  private must(argv: string[]): void {
    const r = this.chroot(argv);
    if (r.status !== 0) throw new Error(`${argv.join(" ")} in the builder root exited ${r.status}: ${r.stderr}`);
  }
}

/** The dev stack's kind of worker, for validate's self-check: the demo handler the bundle carries. */
export function demoWorkerEnv(region: string): Record<string, string> {
  return {
    WORKER_HANDLER: `${INSTALL.bundleDir}/examples/demo-handler.js`,
    SQS_QUEUE_URL: `https://sqs.${region}.amazonaws.com/000000000000/test`,
    AWS_REGION: region,
  };
}

/** A BakeState for the SSH-side steps: AWS clients exist (the type wants them) but are never called. */
export function sshBakeState(root: string, target: SshTarget | undefined, settings: Partial<BakeSettings> = {}): BakeState {
  const region = settings.region ?? "eu-west-1";
  return {
    buildId: `test-${randomBytes(4).toString("hex")}`,
    root,
    ssh: target,
    clients: { ec2: new EC2Client({ region }), ssm: new SSMClient({ region }) },
    settings: {
      stack: "test",
      region,
      instanceType: "t3.medium",
      subnetId: "subnet-00000000",
      baseImage: "ami-00000000",
      sshCidr: "",
      sshUser: target?.user ?? "admin",
      keep: 3,
      tags: {},
      sshTimeout: 30,
      imageTimeout: 600,
      builderLifetimeMinutes: 60,
      rootVolumeSize: 8,
      selfCheckEnv: demoWorkerEnv(region),
      ...settings,
    },
  };
}

/** A StepContext whose lines are kept (and echoed when KILN_TEST_VERBOSE is set). */
export function recordingContext(step: string, lines: string[], signal = new AbortController().signal): StepContext {
  return {
    signal,
    log: (line) => {
      lines.push(`${step}: ${line}`);
      if (process.env.KILN_TEST_VERBOSE) console.log(`      ${step}: ${line}`);
    },
  };
}

export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => server.once("error", reject).listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((r) => server.close(r));
  return port;
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/** Mount points at or below `dir`, deepest first. */
function mountsBelow(dir: string): string[] {
  const real = fs.realpathSync(dir);
  return fs
    .readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((l) => l.split(" ")[4])
    .filter((p): p is string => !!p)
    .map((p) => p.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))))
    .filter((p) => p === real || p.startsWith(`${real}/`))
    .sort((a, b) => b.length - a.length);
}

function unmount(mountPoint: string): void {
  for (let i = 0; i < 20; i++) {
    if (spawnSync("umount", [mountPoint]).status === 0) return;
    spawnSync("sleep", ["0.1"]);
  }
  // Still busy after two seconds: detach it; it goes once its last user does.
  run("umount", ["--lazy", mountPoint]);
}

/** Kills processes whose root is inside `root`: what our sshd started there, and nothing else; `spare` lives. */
function killProcessesIn(root: string, spare?: number): void {
  if (!fs.existsSync(root)) return;
  const real = fs.realpathSync(root);
  for (const pid of fs.readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      const procRoot = fs.readlinkSync(`/proc/${pid}/root`);
      if ((procRoot === real || procRoot.startsWith(`${real}/`)) && Number(pid) !== spare) process.kill(Number(pid), "SIGKILL");
    } catch {
      /* gone, or not ours to read */
    }
  }
}

/** rm -rf that never crosses into a mount, and refuses while one is left below `dir`. */
export function removeTree(dir: string): void {
  if (!fs.existsSync(dir)) return;
  const left = mountsBelow(dir);
  if (left.length) throw new Error(`not removing ${dir}: still mounted below it: ${left.join(", ")}`);
  run("rm", ["-rf", "--one-file-system", dir]);
}

function run(cmd: string, args: string[]) {
  const r = spawnSync(cmd, args, { encoding: "utf8", maxBuffer: 64 << 20 });
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} exited ${r.status}: ${r.stderr.trim()}`);
  return r;
}

function tail(file: string, lines = 20): string {
  try {
    return fs.readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
}
