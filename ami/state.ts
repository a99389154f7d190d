import type { NodeSSH } from "node-ssh";
import type { BakeClients } from "./aws-clients";
import type { SessionPlugin } from "./session-plugin";

/** How to reach the host the provisioning steps (wait-for-ssh .. clean) run on. */
export interface SshTarget {
  host: string;
  port: number;
  user: string;
  /** PEM/OpenSSH private key text. */
  privateKey: string;
}

/** The bake's settings after kiln:bake and flags are merged (ami/settings.ts). */
export interface BakeSettings {
  stack: string;
  region: string;
  instanceType: string;
  /** Where the builder runs; it needs a route to the caller for SSH. */
  subnetId: string;
  /** An AMI id, or an SSM parameter path such as AL2023's public one; resolved by resolve-base-image. */
  baseImage: string;
  /** CIDR allowed to reach the builder's SSH port; empty: the caller's own address (the VPC's with private_ip). */
  sshCidr: string;
  /**
   * How SSH reaches the builder (Packer's ssh_interface): its public address, its private one (from
   * inside the VPC, a VPN, peering), or Session Manager port forwarding (no inbound rule at all).
   * Unset: the public address when it has one, else the private one.
   */
  sshInterface?: "public_ip" | "private_ip" | "session_manager";
  sshUser: string;
  /** kiln images of this stack kept by prune. */
  keep: number;
  tags: Record<string, string>;
  /** Wall-clock limits, seconds (kiln:bake.sshTimeout, imageTimeout; --ssh-timeout, --image-timeout). */
  sshTimeout: number;
  imageTimeout: number;
  /** Seconds one AWS request may go unanswered (kiln:bake.requestTimeout). */
  requestTimeout?: number;
  /** The builder terminates itself after this many minutes, even if the bake died with SIGKILL. */
  builderLifetimeMinutes: number;
  rootVolumeSize: number;
  /** The application's directory (kiln:bake.appDir), absolute: uploaded as app/, its NN-*.sh run after kiln's scripts. */
  appDir?: string;
  /**
   * The worker environment an instance of this stack gets (ami/self-check-env.ts), secrets as
   * placeholders: validate runs the stack's own handler, command or app with it on the builder.
   */
  selfCheckEnv?: Record<string, string>;
  /** Seconds an instance may take to run, stop or terminate, and its security group to become deletable; default 600. */
  instanceTimeout?: number;
  /** First interval, ms, between AWS state polls (backing off to 6x); default 5000. Tests set a few ms. */
  pollMs?: number;
  /** Customer managed KMS key for the image's snapshots (the builder's root volume is made with it). */
  kmsKeyId?: string;
  /** More regions the image is copied to, each copy encrypted with regionKmsKeyIds[region] when kmsKeyId is set. */
  copyRegions?: string[];
  regionKmsKeyIds?: Record<string, string>;
  /** Accounts allowed to launch the image (and its copies), and to create volumes from their snapshots. */
  shareAccounts?: string[];
}

/** A Session Manager session forwarding a local port to the builder's port 22, and the plugin carrying it. */
export interface SshTunnel {
  instanceId: string;
  /** Recorded the moment StartSession answers: TerminateSession ends it. */
  sessionId?: string;
  /** Recorded the moment it is spawned: stopped before the session is ended. */
  plugin?: SessionPlugin;
  localPort?: number;
  /** Set while the tunnel is being closed on purpose, so the plugin's exit is not reported as a loss. */
  closing?: boolean;
}

/** Everything a bake knows and has created; each step records ids here the moment it has them. */
export interface BakeState {
  buildId: string;
  settings: BakeSettings;
  /** Repository root: the bundle, scripts and stack files are found from here. */
  root: string;
  clients: BakeClients;
  /** Content hash of bundle, scripts, base image and bake settings (content-hash.ts). */
  contentHash?: string;
  /** Hash of the payload alone: what a dry run without AWS can say (the content hash needs the base image's id). */
  payloadHash?: string;
  /** Where the base image comes from (an SSM parameter), when a dry run could not resolve it. */
  baseImageSource?: string;
  /** A dry run that could not ask AWS: why, and what each step could not check. */
  offline?: string;
  unchecked?: { step: string; what: string }[];
  /** Commit the bake was made from, tagged on the image as kiln:git-commit. */
  gitCommit?: string;
  imageName?: string;
  /** Resolved base AMI and its architecture. */
  baseImageId?: string;
  architecture?: "x86_64" | "arm64";
  /** The base image's root device (/dev/xvda, /dev/sda1): the builder's and the image's root mapping. */
  rootDeviceName?: string;
  /** Directory holding the worker bundle, the units and the Node runtime to upload. */
  payloadDir?: string;

  keyPair?: { name: string; id?: string; privateKey: string };
  /** Session Manager's temporary role and instance profile (one name): what of them exists. */
  builderProfile?: { name: string; role?: boolean; profile?: boolean };
  securityGroupId?: string;
  instanceId?: string;
  /** session-manager-plugin's version, found by pre-validate when sshInterface is session_manager. */
  sessionPluginVersion?: string;
  /** Session Manager port forwarding to the builder's SSH (ssm-tunnel): what of it exists. */
  tunnel?: SshTunnel;
  /** Epoch ms by which SSH on the builder must answer: the SSM agent's wait counts against it too. */
  sshDeadline?: number;
  ssh?: SshTarget;
  connection?: NodeSSH;
  /** Set once the image is registered; until it is available a failure deregisters it. */
  imageId?: string;
  snapshotIds?: string[];
  /** True once the image is complete: cleanup then leaves it alone. */
  imageDone?: boolean;
  /** Bake even when an image with the same content hash exists (--force). */
  force?: boolean;
  /** Region → the image's copy there (distribute), recorded as soon as CopyImage answers. */
  copies?: Record<string, string>;
  /** Copies that are complete: cleanup leaves them, as it leaves a complete image. */
  copiesDone?: string[];
  /** An existing image with the same content hash, reused instead of baking. */
  reusedImageId?: string;
}
