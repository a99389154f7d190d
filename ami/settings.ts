import * as fs from "node:fs";
import * as path from "node:path";
import { ConfigError, parseStackConfig } from "../infra/config";
import { readStackFile } from "../infra/stack-file";
import { selfCheckEnvironment } from "./self-check-env";
import type { BakeSettings } from "./state";

/** Flags that override `kiln:bake` for one run. */
export interface BakeFlags {
  region?: string;
  instanceType?: string;
  subnetId?: string;
  baseImage?: string;
  sshCidr?: string;
  sshUser?: string;
  keep?: number;
  sshInterface?: BakeSettings["sshInterface"];
  sshTimeout?: number;
  instanceTimeout?: number;
  imageTimeout?: number;
  requestTimeout?: number;
}

export const BAKE_DEFAULTS = {
  sshUser: "ec2-user",
  keep: 3,
  /** Seconds: SSH on a fresh instance, and a new image becoming available. */
  sshTimeout: 600,
  imageTimeout: 3600,
  /** Seconds: an instance running, stopping or terminating, a security group becoming deletable. */
  instanceTimeout: 600,
  requestTimeout: 30,
  /** A builder ends itself after two hours, whatever happened to the bake that started it. */
  builderLifetimeMinutes: 120,
} as const;

/**
 * The bake's settings: `Pulumi.<stack>.yaml` validated as a whole (a stack that cannot deploy is not
 * worth baking for), its `kiln:bake` map, then flags. The builder defaults to the workers' instance
 * type and first subnet, so a stack with no `kiln:bake` still bakes.
 */
export function bakeSettings(root: string, stack: string, flags: BakeFlags = {}): BakeSettings {
  const { raw } = readStackFile(root, stack);
  const cfg = parseStackConfig(stack, raw);
  const bake = cfg.bake;
  return {
    stack,
    region: flags.region ?? cfg.region,
    instanceType: flags.instanceType ?? bake.instanceType ?? cfg.instanceType,
    subnetId: flags.subnetId ?? bake.subnetId ?? cfg.subnetIds[0],
    baseImage: flags.baseImage ?? bake.baseImage ?? "",
    sshCidr: flags.sshCidr ?? bake.sshCidr ?? "",
    sshUser: flags.sshUser ?? bake.sshUser ?? BAKE_DEFAULTS.sshUser,
    keep: flags.keep ?? bake.keep ?? BAKE_DEFAULTS.keep,
    tags: { ...cfg.tags, ...bake.tags },
    sshInterface: flags.sshInterface ?? bake.sshInterface,
    sshTimeout: flags.sshTimeout ?? bake.sshTimeout ?? BAKE_DEFAULTS.sshTimeout,
    imageTimeout: flags.imageTimeout ?? bake.imageTimeout ?? BAKE_DEFAULTS.imageTimeout,
    instanceTimeout: flags.instanceTimeout ?? bake.instanceTimeout ?? BAKE_DEFAULTS.instanceTimeout,
    requestTimeout: flags.requestTimeout ?? bake.requestTimeout ?? BAKE_DEFAULTS.requestTimeout,
    builderLifetimeMinutes: bake.builderLifetime ?? BAKE_DEFAULTS.builderLifetimeMinutes,
    kmsKeyId: bake.kmsKeyId,
    copyRegions: copyRegions(stack, flags.region ?? cfg.region, bake.copyRegions ?? []),
    regionKmsKeyIds: bake.regionKmsKeyIds,
    shareAccounts: bake.shareAccounts,
    rootVolumeSize: bake.rootVolumeSize ?? cfg.rootVolumeSize,
    appDir: bake.appDir ? appDirectory(root, stack, bake.appDir) : undefined,
    selfCheckEnv: selfCheckEnvironment(cfg),
  };
}

/** The image is made in the stack's region: copying it there again would make a second image of it. */
function copyRegions(stack: string, region: string, regions: string[]): string[] {
  if (regions.includes(region)) {
    throw new ConfigError(stack, [`kiln:bake.copyRegions names ${region}, the region the image is baked in: list only the other regions`]);
  }
  return regions;
}

/** kiln:bake.appDir, relative to the stack file; it must exist, or the bake would ship without the app. */
function appDirectory(stackDir: string, stack: string, dir: string): string {
  const full = path.resolve(stackDir, dir);
  if (!fs.statSync(full, { throwIfNoEntry: false })?.isDirectory()) {
    throw new ConfigError(stack, [`kiln:bake.appDir ${JSON.stringify(dir)} is not a directory next to the stack file (${full})`]);
  }
  return full;
}
