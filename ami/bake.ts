import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { BakeClients, bakeClients } from "./aws-clients";
import { withCallSignal } from "./call-signal";
import { offlineTolerant, planOf, printPlan } from "./dry-run";
import { finishSteps, writeBakeManifest } from "./finish";
import { reapBuilders } from "./reap";
import { attachReporter, Output, summary } from "./report";
import { RunReport, Runner, StepRecord } from "./runner";
import { BakeFlags, bakeSettings } from "./settings";
import type { BakeSettings, BakeState, SshTarget } from "./state";
import { Step } from "./step";
import { stepClean } from "./steps/clean";
import { stepCreateImage } from "./steps/create-image";
import { stepInstanceProfile } from "./steps/instance-profile";
import { stepKeyPair } from "./steps/key-pair";
import { stepPreValidate } from "./steps/pre-validate";
import { stepPreparePayload } from "./steps/prepare-payload";
import { stepProvision } from "./steps/provision";
import { stepReapExpired } from "./steps/reap-expired";
import { stepResolveBaseImage } from "./steps/resolve-base-image";
import { stepReuseImage } from "./steps/reuse-image";
import { stepRunBuilder } from "./steps/run-builder";
import { closeTunnel, PORT_FORWARDING_DOCUMENT, stepSsmTunnel } from "./steps/ssm-tunnel";
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
  clients?: BakeClients;
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
    stepReapExpired,
    stepKeyPair,
    securityGroupStep(opts.securityGroup),
    stepInstanceProfile,
    stepRunBuilder,
    stepSsmTunnel,
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
  const clients = opts.clients ?? bakeClients(settings.region, settings.requestTimeout);
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
  const abort = opts.abort ?? new AbortController();

  if (opts.reap) return reap(opts, state, abort.signal, print);

  let steps = opts.target === "ssh" ? sshSteps() : ec2Steps(opts);
  if (opts.dryRun) steps = steps.filter((s) => READ_ONLY.has(s.name)).map(offlineTolerant);
  if (opts.adjustSteps) steps = opts.adjustSteps(steps);

  const finishing = opts.target === "ssh" || opts.dryRun ? [] : finishSteps(opts);
  const runner = new Runner(steps, { onError: opts.onError ?? "cleanup", trapSignals: opts.trapSignals });
  attachReporter(runner, out, { json: Boolean(opts.json), total: steps.length + finishing.length });
  print(
    opts.target === "ssh"
      ? `kiln bake ${state.buildId}: provisioning ${opts.ssh?.user}@${opts.ssh?.host}:${opts.ssh?.port} (--target ssh)\n`
      : `kiln bake ${state.buildId}: stack ${opts.stack}, ${settings.region}, builder ${settings.instanceType} in ${settings.subnetId}\n`,
  );
  const report = await runner.run(state, abort);
  const records: StepRecord[] = [...report.steps];
  // Every step did its work; a cleanup that failed afterwards leaves something behind, but not a worse image.
  const stepsOk = !report.failure && !report.interrupted;

  if (stepsOk && opts.dryRun) {
    printPlan(planOf(state, opts.stack), out, Boolean(opts.json));
    return { exitCode: 0, state, report };
  }

  const imageId = stepsOk ? (state.reusedImageId ?? (state.imageDone ? state.imageId : undefined)) : undefined;
  let exitCode = report.interrupted ? 130 : report.failure ? 1 : 0;
  let recorded = false;
  if (imageId && finishing.length) {
    const finish = new Runner<BakeState>(finishing, { trapSignals: opts.trapSignals });
    attachReporter(finish, out, { json: Boolean(opts.json), total: steps.length + finishing.length, offset: steps.length });
    const after = await finish.run(state, abort);
    records.push(...after.steps);
    if (after.interrupted) report.interrupted ??= after.interrupted;
    if (after.failure || after.interrupted) {
      exitCode = after.interrupted ? 130 : 1;
      report.failure ??= after.failure;
    }
    recorded = after.steps.find((s) => s.name === "publish")?.status === "done";
    if (recorded) {
      const file = writeBakeManifest(opts, state, imageId, records, report.leftBehind);
      print(`    manifest: ${path.relative(opts.root, file).startsWith("..") ? file : path.relative(opts.root, file)}\n`);
    }
  }
  // The image is made and recorded, and something temporary would not go: say both, with a code of its own.
  if (exitCode === 0 && report.leftBehind.length) exitCode = recorded ? EXIT_CLEANUP_INCOMPLETE : 1;

  print(summary(report, records));
  if (recorded) {
    print(state.reusedImageId ? `\nReused ${imageId}: nothing changed since it was baked.\n` : `\nBaked ${imageId} (${state.imageName}).\n`);
    print(`kiln:amiId is set in Pulumi.${opts.stack}.yaml; deploy it with: pulumi up --stack ${opts.stack}\n`);
    if (exitCode === EXIT_CLEANUP_INCOMPLETE) {
      print(`The image is complete, but this bake's cleanup is not (LEFT BEHIND above); npm run bake-ami -- --stack ${opts.stack} --reap removes a builder once past its deadline.\n`);
    }
  } else if (imageId && !opts.dryRun && opts.target !== "ssh") {
    print(`\n${imageId} is complete but was not recorded: bake again to finish (it is reused, not baked again).\n`);
  } else if (stepsOk && opts.target === "ssh") {
    print(`\nProvisioned ${opts.ssh?.host}: the host now holds what the image would.\n`);
  }
  if (report.failure && !report.interrupted && opts.onError === "abort" && state.instanceId) {
    // The plugin is this process's child and dies with it: end its session now; printKept says how to open another.
    await closeTunnel(state, stepSsmTunnel.name, (l) => print(`    ${stepSsmTunnel.name}: ${l}\n`));
    printKept(opts, state, print);
  }
  if (opts.json) {
    out.write(
      JSON.stringify({
        event: "result", ok: exitCode === 0, exitCode, imageId: recorded ? imageId : undefined, reused: Boolean(state.reusedImageId),
        copies: state.copies, buildId: state.buildId, contentHash: state.contentHash, steps: records, leftBehind: report.leftBehind,
      }) + "\n",
    );
  }
  return { exitCode, imageId: recorded ? imageId : undefined, reused: Boolean(state.reusedImageId), state, report };
}

/** Exit code of a bake whose image is made and recorded while something it created could not be removed. */
export const EXIT_CLEANUP_INCOMPLETE = 3;

async function reap(opts: BakeOptions, state: BakeState, signal: AbortSignal, print: (t: string) => void): Promise<BakeResult> {
  const { settings, clients } = state;
  const out = opts.out;
  const report = await withCallSignal(signal, () =>
    reapBuilders({
      ec2: clients.ec2,
      iam: clients.iam,
      olderThanMinutes: settings.builderLifetimeMinutes,
      stack: opts.stack,
      dryRun: opts.dryRun,
      pollMs: settings.pollMs,
      timeoutSeconds: settings.instanceTimeout,
      signal,
      log: (line) => print(`    reap: ${line}\n`),
    }),
  );
  if (opts.json) out.write(JSON.stringify({ event: "reap", ...report, failed: report.failed.map((f) => ({ resource: f.resource, error: f.error.message })) }) + "\n");
  else {
    const verb = report.dryRun ? "would reap" : "reaped";
    print(
      `${verb} ${report.instances.length} builder(s), ${report.keyPairs.length} key pair(s), ${report.securityGroups.length} security group(s), ` +
        `${report.images.length} unfinished image(s), ${report.profiles.length} instance profile(s)\n`,
    );
    for (const f of report.failed) print(`  could not reap ${f.resource}: ${f.error.message}\n`);
  }
  return { exitCode: report.failed.length ? 1 : 0, state };
}

function printKept(opts: BakeOptions, state: BakeState, print: (t: string) => void): void {
  // The key exists only in this process: keep it, or nobody can log in to what was kept.
  let keyFile: string | undefined;
  if (state.keyPair?.privateKey) {
    keyFile = path.join(opts.root, ".kiln", `builder-${state.buildId}.pem`);
    fs.mkdirSync(path.dirname(keyFile), { recursive: true });
    fs.writeFileSync(keyFile, state.keyPair.privateKey, { mode: 0o600 });
  }
  const user = state.settings.sshUser;
  const login = !keyFile
    ? ""
    : state.settings.sshInterface === "session_manager"
      ? `; log in with: aws ssm start-session --region ${state.settings.region} --target ${state.instanceId} --document-name ${PORT_FORWARDING_DOCUMENT} ` +
        `--parameters portNumber=22,localPortNumber=2222, then in another terminal: ssh -i ${keyFile} -p 2222 ${user}@127.0.0.1`
      : state.ssh
        ? `; log in with: ssh -i ${keyFile} ${state.ssh.user}@${state.ssh.host}`
        : "";
  print(
    `\nKept for debugging (--on-error=abort): builder ${state.instanceId}` +
      login +
      (state.keyPair ? `, key pair ${state.keyPair.name}` : "") +
      (state.securityGroupId ? `, security group ${state.securityGroupId}` : "") +
      (state.builderProfile ? `, instance profile ${state.builderProfile.name}` : "") +
      `.\nIt terminates itself within ${state.settings.builderLifetimeMinutes} minutes; reap it sooner with: npm run bake-ami -- --stack ${opts.stack} --reap\n`,
  );
}

/** Reads an SSH private key file for --target ssh, with an error that names the flag. */
export function readKeyFile(file: string): string {
  try {
    return fs.readFileSync(file, "utf8");
  } catch (e) {
    throw new Error(`--key ${file}: ${(e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (e as Error).message}`);
  }
}
