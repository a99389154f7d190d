import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import type { BakeSettings, BakeState } from "../../ami/state";
import type { Step } from "../../ami/step";
import { stepClean } from "../../ami/steps/clean";
import { stepProvision } from "../../ami/steps/provision";
import { stepUpload } from "../../ami/steps/upload";
import { stepValidate } from "../../ami/steps/validate";
import { stepWaitForSsh } from "../../ami/steps/wait-for-ssh";
import { BOOTABLE_PACKAGES, debianRoot, recordingContext, sshBakeState } from "../support/builder-host";
import type { LoopbackNetwork } from "../support/loopback-network";
import { BootedMachine, Overlay } from "../support/nspawn";
import { REPO } from "../support/pulumi-harness";

/** The login user of the "base image", as ec2-user is AL2023's: passwordless sudo, a key from launch. */
const LOGIN_USER = "admin";

/**
 * What a launch adds to the image for cloud-init, on EC2 its datasource: user data and an instance
 * id through NoCloud's seed, the modules kiln's user data needs (write_files; the host name and host keys a cloud image sets up).
 */
export function writeLaunch(root: string, opts: { instanceId: string; userData: string }): void {
  const put = (p: string, text: string, mode = 0o644) => {
    fs.mkdirSync(path.dirname(path.join(root, p)), { recursive: true });
    fs.writeFileSync(path.join(root, p), text, { mode });
  };
  put("/var/lib/cloud/seed/nocloud/meta-data", `instance-id: ${opts.instanceId}\nlocal-hostname: ${opts.instanceId}\n`);
  put("/var/lib/cloud/seed/nocloud/user-data", opts.userData);
  put(
    LAUNCH_CLOUD_CFG,
    [
      "# The test's launch: NoCloud instead of EC2's datasource, and only the modules a kiln image uses.",
      "datasource_list: [NoCloud]",
      "network: {config: disabled}",
      "ssh_genkeytypes: [ed25519]",
      "manage_etc_hosts: localhost",
      "cloud_init_modules: [write_files, set_hostname, update_hostname, update_etc_hosts, ssh]",
      "cloud_config_modules: []",
      "cloud_final_modules: []",
      "",
    ].join("\n"),
  );
}

const LAUNCH_CLOUD_CFG = "/etc/cloud/cloud.cfg.d/99-kiln-test-launch.cfg";

export interface BakedImage {
  /** The Debian root the builder booted from: the base image, never written. */
  base: string;
  /** What the bake changed on the builder (overlayfs upper): the image is this over `base`. */
  image: string;
  /** Every line the builder-side steps logged. */
  log: string[];
  /** The builder's root after its poweroff, as the snapshot would see it: inspect it, then release(). */
  builder: Overlay;
}

/**
 * Bakes an image the way bake-ami does on EC2, with a booted Debian standing in for the builder
 * instance: systemd as PID 1, cloud-init, sshd. The real builder-side steps run over SSH (wait for SSH
 * and cloud-init, upload, provision, validate, clean), then the builder powers off as StopInstances
 * stops it, and what it left on disk is the image.
 */
export async function bakeImage(opts: {
  dir: string;
  network: LoopbackNetwork;
  settings: Partial<BakeSettings>;
  /** Runs on the booted builder just before clean (plant what clean must remove). */
  beforeClean?: (builder: BootedMachine) => Promise<void>;
  log?: (line: string) => void;
}): Promise<BakedImage> {
  const base = path.join(opts.dir, "base");
  fs.mkdirSync(base, { recursive: true });
  const tarball = await debianRoot(opts.log, BOOTABLE_PACKAGES);
  run("tar", ["--numeric-owner", "-xpf", tarball, "-C", base]);

  const builder = Overlay.mount(path.join(opts.dir, "builder"), [base]);
  const lines: string[] = [];
  let machine: BootedMachine | undefined;
  try {
    const privateKey = addLoginUser(builder.merged, opts.dir);
    writeLaunch(builder.merged, { instanceId: "i-0b0b0b0b0b0b0b0b0", userData: "#cloud-config\n{}\n" });
    machine = await BootedMachine.boot({ root: builder.merged, netns: opts.network.path });
    await saveRandomSeedAtShutdown(machine);

    const state: BakeState = sshBakeState(REPO, { host: "127.0.0.1", port: opts.network.port("ssh"), user: LOGIN_USER, privateKey }, { sshTimeout: 60, ...opts.settings, sshUser: LOGIN_USER });
    const ran: Step<BakeState>[] = [];
    const step = async (s: Step<BakeState>) => {
      ran.push(s);
      await s.run(state, recordingContext(s.name, lines));
      opts.log?.(`${s.name} done`);
    };
    try {
      await step(stepWaitForSsh);
      await step(stepUpload);
      await step(stepProvision);
      await step(stepValidate);
      await opts.beforeClean?.(machine);
      await step(stepClean);
    } catch (e) {
      throw new Error(`${(e as Error).message}\n${lines.join("\n")}`);
    } finally {
      for (const s of ran.reverse()) await s.cleanup?.(state, recordingContext(s.name, lines));
    }
    await machine.poweroff();
    machine = undefined;
    // The launch's files are the test's, not the bake's.
    fs.rmSync(path.join(builder.upper, LAUNCH_CLOUD_CFG), { force: true });
    return { base, image: builder.upper, log: lines, builder };
  } catch (e) {
    await machine?.kill();
    builder.unmount();
    throw e;
  }
}

/**
 * systemd skips its random seed in a container (ConditionVirtualization=!container); a machine that
 * must save one at shutdown, as an EC2 instance does, gets the condition lifted for this boot (/run).
 */
export async function saveRandomSeedAtShutdown(machine: BootedMachine): Promise<void> {
  const dropIn = "/run/systemd/system/systemd-random-seed.service.d/kiln-test.conf";
  const r = await machine.exec(["sh", "-c", `mkdir -p ${path.dirname(dropIn)} && printf '[Unit]\\nConditionVirtualization=\\n' > ${dropIn} && systemctl daemon-reload && systemctl start systemd-random-seed.service`]);
  if (r.status !== 0) throw new Error(`could not start systemd-random-seed: ${r.stderr}`);
}

/** The base image's login user, with passwordless sudo and a fresh key: what EC2's key pair gives. */
function addLoginUser(root: string, dir: string): string {
  const keyFile = path.join(dir, "login_ed25519");
  run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "kiln-boot-test", "-f", keyFile]);
  run("chroot", [root, "useradd", "--create-home", "--shell", "/bin/sh", "--password", "*", LOGIN_USER]);
  fs.writeFileSync(path.join(root, `etc/sudoers.d/90-${LOGIN_USER}`), `${LOGIN_USER} ALL=(ALL) NOPASSWD:ALL\n`, { mode: 0o440 });
  const ssh = path.join(root, "home", LOGIN_USER, ".ssh");
  fs.mkdirSync(ssh, { mode: 0o700 });
  fs.copyFileSync(`${keyFile}.pub`, path.join(ssh, "authorized_keys"));
  run("chroot", [root, "chown", "-R", `${LOGIN_USER}:${LOGIN_USER}`, `/home/${LOGIN_USER}/.ssh`]);
  return fs.readFileSync(keyFile, "utf8");
}

function run(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} exited ${r.status}: ${r.stderr.trim()}`);
}
