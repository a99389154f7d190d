import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { EC2Client } from "@aws-sdk/client-ec2";
import { SSMClient } from "@aws-sdk/client-ssm";
import { pruneImages } from "./prune";
import { BakeManifest, recordAmiId, writeManifest } from "./publish";
import { reapBuilders } from "./reap";
import { attachReporter, Output, summary } from "./report";
import { RunReport, Runner, StepRecord } from "./runner";
import { BakeFlags, bakeSettings } from "./settings";
import type { BakeSettings, BakeState, SshTarget } from "./state";
import { Step } from "./step";
import { stepClean } from "./steps/clean";
import { stepCreateImage } from "./steps/create-image";
import { stepKeyPair } from "./steps/key-pair";
import { stepPreValidate } from "./steps/pre-validate";
import { stepPreparePayload } from "./steps/prepare-payload";
import { stepProvision } from "./steps/provision";
import { stepResolveBaseImage } from "./steps/resolve-base-image";
import { stepReuseImage } from "./steps/reuse-image";
import { stepRunBuilder } from "./steps/run-builder";
import { securityGroupStep, SecurityGroupStepOptions } from "./steps/security-group";
import { stepUpload } from "./steps/upload";
import { stepValidate } from "./steps/validate";
import { stepWaitForSsh } from "./steps/wait-for-ssh";

export interface BakeOptions {
  /** The repository: the worker, the scripts, and (unless stackDir says otherwise) the stack files. */
  root: string;
  /** Where Pulumi.<stack>.yaml is read and written; default root. */
  stackDir?: string;
  stack: string;
  flags?: BakeFlags;
  /** ec2: the full bake. ssh: steps wait-for-ssh..clean against an existing host (Packer's null builder). */
  target?: "ec2" | "ssh";
  ssh?: SshTarget;
  dryRun?: boolean;
  force?: boolean;
  onError?: "cleanup" | "abort";
  /** Terminate kiln builders older than the build deadline, with their key pairs and security groups. */
  reap?: boolean;
  json?: boolean;
  /** Where the manifest goes; default .kiln/bake-<stack>.json. */
  manifest?: string;
  /** Tests and embedders: clients, faster polls, the caller's address, extra steps. */
  clients?: { ec2: EC2Client; ssm: SSMClient };
  settings?: Partial<BakeSettings>;
  securityGroup?: SecurityGroupStepOptions;
  /** Rewrites the step list (tests point the builder's address at a local sshd). */
  adjustSteps?: (steps: Step<BakeState>[]) => Step<BakeState>[];
  abort?: AbortController;
  trapSignals?: boolean;
  out: Output;
}

export interface BakeResult {
  exitCode: number;
  imageId?: string;
  reused?: boolean;
  state: BakeState;
  report?: RunReport;
}

/** The bake from launch to image: each step creates one thing and owns undoing it. */
export function ec2Steps(opts: Pick<BakeOptions, "securityGroup">): Step<BakeState>[] {
  return [
    stepPreValidate,
    stepResolveBaseImage,
    stepPreparePayload,
    stepReuseImage,
    stepKeyPair,
    securityGroupStep(opts.securityGroup),
    stepRunBuilder,
    ...sshSteps(),
    stepCreateImage,
  ];
}

/** What runs on the builder; `--target ssh` runs only these. */
export function sshSteps(): Step<BakeState>[] {
  return [stepWaitForSsh, stepUpload, stepProvision, stepValidate, stepClean];
}

/** Steps a dry run may take: they read, and build locally, but create nothing in the account. */
const READ_ONLY = new Set([stepPreValidate.name, stepResolveBaseImage.name, stepPreparePayload.name, stepReuseImage.name]);

function utcStamp(d = new Date()): string {
  return d.toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
}

function gitCommit(root: string): string | undefined {
  try {
    const sha = execFileSync("git", ["rev-parse", "HEAD"], { cwd: root, stdio: ["ignore", "pipe", "ignore"] }).toString().trim();
    const dirty = execFileSync("git", ["status", "--porcelain"], { cwd: root, stdio: ["ignore", "pipe", "ignore"] }).toString().trim();
    return dirty ? `${sha}-dirty` : sha;
  } catch {
    return undefined;
  }
}

export async function bake(opts: BakeOptions): Promise<BakeResult> {
  const stackDir = opts.stackDir ?? opts.root;
  const settings: BakeSettings = { ...bakeSettings(stackDir, opts.stack, opts.flags), ...opts.settings };
  const clients = opts.clients ?? {
    ec2: new EC2Client({ region: settings.region }),
    ssm: new SSMClient({ region: settings.region }),
  };
  const started = new Date();
  const state: BakeState = {
    buildId: `${utcStamp(started).toLowerCase()}-${randomBytes(3).toString("hex")}`,
    settings,
    root: opts.root,
    clients,
    gitCommit: gitCommit(opts.root),
    imageName: `kiln-worker-${opts.stack}-${utcStamp(started)}`,
    force: opts.force,
    ssh: opts.ssh,
  };
  const out = opts.out;
  const print = (text: string) => !opts.json && out.write(text);

  if (opts.reap) {
    const report = await reapBuilders({
      ec2: clients.ec2,
      olderThanMinutes: settings.builderLifetimeMinutes,
      stack: opts.stack,
      dryRun: opts.dryRun,
      pollMs: settings.pollMs,
      log: (line) => print(`    reap: ${line}\n`),
    });
    if (opts.json) out.write(JSON.stringify({ event: "reap", ...report, failed: report.failed.map((f) => ({ resource: f.resource, error: f.error.message })) }) + "\n");
    else {
      const verb = report.dryRun ? "would reap" : "reaped";
      print(`${verb} ${report.instances.length} builder(s), ${report.keyPairs.length} key pair(s), ${report.securityGroups.length} security group(s)\n`);
      for (const f of report.failed) print(`  could not reap ${f.resource}: ${f.error.message}\n`);
    }
    return { exitCode: report.failed.length ? 1 : 0, state };
  }

  let steps = opts.target === "ssh" ? sshSteps() : ec2Steps(opts);
  if (opts.dryRun) steps = steps.filter((s) => READ_ONLY.has(s.name));
  if (opts.adjustSteps) steps = opts.adjustSteps(steps);

  const runner = new Runner(steps, { onError: opts.onError ?? "cleanup", trapSignals: opts.trapSignals });
  attachReporter(runner, out, { json: Boolean(opts.json), total: steps.length + (opts.target === "ssh" || opts.dryRun ? 0 : 2) });
  print(
    opts.target === "ssh"
      ? `kiln bake ${state.buildId}: provisioning ${opts.ssh?.user}@${opts.ssh?.host}:${opts.ssh?.port} (--target ssh)\n`
      : `kiln bake ${state.buildId}: stack ${opts.stack}, ${settings.region}, builder ${settings.instanceType} in ${settings.subnetId}\n`,
  );
  const report = await runner.run(state, opts.abort);
  const records: StepRecord[] = [...report.steps];

  if (report.ok && opts.dryRun) {
    printPlan(state, opts, out);
    return { exitCode: 0, state, report };
  }

  let imageId = state.reusedImageId ?? (state.imageDone ? state.imageId : undefined);
  let exitCode = report.ok ? 0 : report.interrupted ? 130 : 1;
  if (report.ok && opts.target !== "ssh" && imageId) {
    const finish = new Runner<BakeState>([publishStep(opts, imageId), pruneStep(imageId)]);
    attachReporter(finish, out, { json: Boolean(opts.json), total: steps.length + 2, offset: steps.length });
    const after = await finish.run(state, opts.abort);
    records.push(...after.steps);
    if (!after.ok) {
      exitCode = 1;
      report.failure ??= after.failure;
    }
    if (after.steps[0].status === "done") {
      const file = writeBakeManifest(opts, state, imageId, records);
      print(`    manifest: ${path.relative(opts.root, file).startsWith("..") ? file : path.relative(opts.root, file)}\n`);
    }
  } else if (!report.ok) {
    imageId = undefined;
  }

  print(summary(report, records));
  if (report.ok && imageId) {
    print(state.reusedImageId ? `\nReused ${imageId}: nothing changed since it was baked.\n` : `\nBaked ${imageId} (${state.imageName}).\n`);
    print(`kiln:amiId is set in Pulumi.${opts.stack}.yaml; deploy it with: pulumi up --stack ${opts.stack}\n`);
  } else if (report.ok && opts.target === "ssh") {
    print(`\nProvisioned ${opts.ssh?.host}: the host now holds what the image would.\n`);
  }
  if (!report.ok && !report.interrupted && opts.onError === "abort" && state.instanceId) {
    // The key exists only in this process: keep it, or nobody can log in to what was kept.
    let keyFile: string | undefined;
    if (state.keyPair?.privateKey) {
      keyFile = path.join(opts.root, ".kiln", `builder-${state.buildId}.pem`);
      fs.mkdirSync(path.dirname(keyFile), { recursive: true });
      fs.writeFileSync(keyFile, state.keyPair.privateKey, { mode: 0o600 });
    }
    print(
      `\nKept for debugging (--on-error=abort): builder ${state.instanceId}` +
        (state.ssh && keyFile ? `; log in with: ssh -i ${keyFile} ${state.ssh.user}@${state.ssh.host}` : "") +
        (state.keyPair ? `, key pair ${state.keyPair.name}` : "") +
        (state.securityGroupId ? `, security group ${state.securityGroupId}` : "") +
        `.\nIt terminates itself within ${settings.builderLifetimeMinutes} minutes; reap it sooner with: npm run bake-ami -- --stack ${opts.stack} --reap\n`,
    );
  }
  if (opts.json) {
    out.write(JSON.stringify({ event: "result", ok: report.ok, exitCode, imageId, reused: Boolean(state.reusedImageId), buildId: state.buildId, contentHash: state.contentHash, steps: records }) + "\n");
  }
  return { exitCode, imageId, reused: Boolean(state.reusedImageId), state, report };
}

function publishStep(opts: BakeOptions, imageId: string): Step<BakeState> {
  return {
    name: "publish",
    title: `record the image in Pulumi.${opts.stack}.yaml`,
    async run(_state, ctx) {
      const { previous } = recordAmiId(opts.stackDir ?? opts.root, opts.stack, imageId);
      ctx.log(`kiln:amiId ${previous ?? "(unset)"} -> ${imageId}`);
    },
  };
}

/** The bake's record, written once every step, publish and prune included, has its time. */
function writeBakeManifest(opts: BakeOptions, state: BakeState, imageId: string, records: StepRecord[]): string {
  const file = opts.manifest ?? path.join(opts.root, ".kiln", `bake-${opts.stack}.json`);
  const manifest: BakeManifest = {
    ami: imageId,
    region: state.settings.region,
    stack: opts.stack,
    name: state.imageName,
    contentHash: state.contentHash,
    baseImage: state.baseImageId,
    gitCommit: state.gitCommit,
    reused: Boolean(state.reusedImageId),
    builtAt: new Date().toISOString(),
    steps: records.map((r) => ({ name: r.name, status: r.status, ms: r.ms })),
  };
  writeManifest(file, manifest);
  return file;
}

function pruneStep(imageId: string): Step<BakeState> {
  return {
    name: "prune",
    title: "prune old images of the stack",
    async run(state, ctx) {
      const report = await pruneImages({
        ec2: state.clients.ec2,
        stack: state.settings.stack,
        keep: state.settings.keep,
        currentImageId: imageId,
        log: ctx.log,
      });
      ctx.log(`pruned ${report.pruned.length}, kept ${report.spared.length}`);
      if (report.failed.length) throw report.failed[0].error;
    },
  };
}

function printPlan(state: BakeState, opts: BakeOptions, out: Output): void {
  const s = state.settings;
  const plan = {
    dryRun: true,
    stack: opts.stack,
    region: s.region,
    contentHash: state.contentHash,
    baseImage: state.baseImageId,
    architecture: state.architecture,
    reuse: state.reusedImageId,
    wouldCreate: state.reusedImageId
      ? []
      : [
          `key pair kiln-builder-${state.buildId} (ed25519)`,
          `security group allowing SSH from ${s.sshCidr || "your address"} in ${s.subnetId}'s VPC`,
          `builder ${s.instanceType} from ${state.baseImageId}, encrypted ${s.rootVolumeSize} GiB root, IMDSv2, self-destruct after ${s.builderLifetimeMinutes} min`,
          `image ${state.imageName} (encrypted, IMDSv2) and its snapshots`,
        ],
    wouldWrite: `kiln:amiId in Pulumi.${opts.stack}.yaml`,
    wouldPrune: `images of ${opts.stack} beyond the newest ${s.keep}, sparing any in use`,
  };
  if (opts.json) {
    out.write(JSON.stringify({ event: "plan", ...plan }) + "\n");
    return;
  }
  const lines = [
    "",
    "Plan (--dry-run: nothing was created):",
    `  content hash  ${plan.contentHash}`,
    `  base image    ${plan.baseImage} (${plan.architecture})`,
    plan.reuse ? `  reuse         ${plan.reuse}: same content hash, no bake needed (--force bakes anyway)` : "  would create:",
    ...plan.wouldCreate.map((c) => `    - ${c}`),
    `  would write   ${plan.wouldWrite}`,
    `  would prune   ${plan.wouldPrune}`,
  ];
  out.write(lines.join("\n") + "\n");
}

/** Reads an SSH private key file for --target ssh, with an error that names the flag. */
export function readKeyFile(file: string): string {
  try {
    return fs.readFileSync(file, "utf8");
  } catch (e) {
    throw new Error(`--key ${file}: ${(e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (e as Error).message}`);
  }
}
