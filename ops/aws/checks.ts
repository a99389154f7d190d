import { DescribeScalingActivitiesCommand } from "@aws-sdk/client-auto-scaling";
import { _InstanceType, DescribeImagesCommand, DescribeInstancesCommand, DescribeInstanceTypesCommand } from "@aws-sdk/client-ec2";
import { GetServiceQuotaCommand } from "@aws-sdk/client-service-quotas";
import { GetParameterCommand } from "@aws-sdk/client-ssm";
import { AL2023_PARAMETERS } from "../../ami/steps/resolve-base-image";
import { TAG } from "../../ami/steps/tags";
import type { KilnConfig } from "../../infra/config";
import { duration } from "../format";
import { describeAwsFailure } from "./call";
import type { AwsClients } from "./clients";
import { digestInUserData, envDigest, liveParameters } from "./drift";
import type { AwsFleet } from "./fleet";
import { templateVersion } from "./template";

export type CheckStatus = "ok" | "warn" | "fail" | "unknown";

export interface Check {
  name: string;
  status: CheckStatus;
  detail: string;
}

/** Runs a check; a call it could not make is "unknown" with the reason, never a crash of the report. */
export async function check(name: string, run: () => Promise<Omit<Check, "name">>): Promise<Check> {
  try {
    return { name, ...(await run()) };
  } catch (e) {
    return { name, status: "unknown", detail: describeAwsFailure("the check", e) };
  }
}

export async function scalingActivities(c: AwsClients, groupName: string, now = Date.now()): Promise<Omit<Check, "name">> {
  const out = await c.autoscaling.send(new DescribeScalingActivitiesCommand({ AutoScalingGroupName: groupName, MaxRecords: 50 }));
  const day = (out.Activities ?? []).filter((a) => (a.StartTime?.getTime() ?? 0) >= now - 86_400_000);
  const failed = day.filter((a) => a.StatusCode === "Failed" || a.StatusCode === "Cancelled");
  if (!failed.length) return { status: "ok", detail: `${day.length} scaling activit${day.length === 1 ? "y" : "ies"} in the last 24 h, none failed` };
  const last = failed[0];
  return {
    status: "fail",
    detail: `${failed.length} of ${day.length} scaling activities in the last 24 h failed; the latest (${last.StartTime?.toISOString()}): ${last.StatusMessage ?? last.Description ?? last.StatusCode}`,
  };
}

/**
 * EC2 counts running On-Demand and Spot capacity in vCPUs per instance family group. kiln's
 * instance types are all in the "Standard (A, C, D, H, I, M, R, T, Z)" group, quota L-1216C47A for
 * On-Demand and L-34B43A08 for Spot requests (Service Quotas, service code ec2).
 */
const STANDARD_FAMILY = /^[acdhimrtz][0-9a-z-]*\./;
export const VCPU_QUOTA = { onDemand: "L-1216C47A", spot: "L-34B43A08" } as const;

export async function vcpuQuota(c: AwsClients, cfg: KilnConfig, groupName: string): Promise<Omit<Check, "name">> {
  const types = cfg.spot && cfg.spotInstanceTypes.length ? cfg.spotInstanceTypes : [cfg.instanceType];
  if (!types.every((t) => STANDARD_FAMILY.test(t))) {
    return { status: "unknown", detail: `${types.join(", ")} is not in EC2's standard instance families; check its vCPU quota in Service Quotas yourself` };
  }
  const described = await c.ec2.send(new DescribeInstanceTypesCommand({ InstanceTypes: types as _InstanceType[] }));
  const vcpus = Math.max(...(described.InstanceTypes ?? []).map((t) => t.VCpuInfo?.DefaultVCpus ?? 0));
  const need = vcpus * cfg.maxSize;
  const code = cfg.spot ? VCPU_QUOTA.spot : VCPU_QUOTA.onDemand;
  const quota = (await c.quotas.send(new GetServiceQuotaCommand({ ServiceCode: "ec2", QuotaCode: code }))).Quota?.Value;
  if (quota === undefined) return { status: "unknown", detail: `Service Quotas gave no value for ${code}` };

  // What else runs in the account and region counts against the same quota.
  let others = 0;
  let NextToken: string | undefined;
  const typeVcpus = new Map<string, number>();
  do {
    const page = await c.ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: "instance-state-name", Values: ["pending", "running"] }], NextToken }));
    for (const r of page.Reservations ?? []) {
      for (const i of r.Instances ?? []) {
        const inGroup = i.Tags?.some((t) => t.Key === "aws:autoscaling:groupName" && t.Value === groupName);
        if (inGroup || !i.InstanceType || !STANDARD_FAMILY.test(i.InstanceType) || Boolean(i.InstanceLifecycle === "spot") !== cfg.spot) continue;
        if (!typeVcpus.has(i.InstanceType)) {
          const t = await c.ec2.send(new DescribeInstanceTypesCommand({ InstanceTypes: [i.InstanceType] }));
          typeVcpus.set(i.InstanceType, t.InstanceTypes?.[0]?.VCpuInfo?.DefaultVCpus ?? 0);
        }
        others += typeVcpus.get(i.InstanceType)!;
      }
    }
    NextToken = page.NextToken;
  } while (NextToken);

  const what = `kiln:maxSize ${cfg.maxSize} × ${vcpus} vCPUs (${types.join(", ")}) = ${need} vCPUs; quota ${code} (${cfg.spot ? "Spot" : "On-Demand"} standard) is ${quota}, of which other instances use ${others}`;
  if (need > quota) return { status: "fail", detail: `${what}: the group can never reach its maximum; request more in Service Quotas` };
  if (need + others > quota) return { status: "warn", detail: `${what}: at full size the group would hit the quota while the others run` };
  return { status: "ok", detail: what };
}

/** The launch template the group uses carries the digest of the SSM parameters it was deployed with. */
export async function environmentDrift(fleet: AwsFleet): Promise<Omit<Check, "name">> {
  const g = await fleet.group();
  if (!g.launchTemplate) return { status: "unknown", detail: "the group names no launch template" };
  const v = await templateVersion(fleet.clients, g.launchTemplate.id, g.launchTemplate.version);
  const deployed = digestInUserData(v.userData);
  if (!deployed) return { status: "unknown", detail: `launch template ${g.launchTemplate.id} version ${g.launchTemplate.version} carries no KILN_ENV_DIGEST` };
  const params = await liveParameters(fleet.clients, fleet.names.ssmPrefix);
  const live = envDigest(fleet.names.ssmPrefix, params);
  if (live === deployed) return { status: "ok", detail: `the ${params.length} parameters under ${fleet.names.ssmPrefix} match the digest in launch template version ${v.version}` };
  return {
    status: "fail",
    detail:
      `the parameters under ${fleet.names.ssmPrefix} changed since launch template version ${v.version} was deployed (digest ${live.slice(0, 12)} now, ${deployed.slice(0, 12)} deployed): ` +
      `new instances read values the running ones do not have; if the change was made outside Pulumi, \`pulumi up --refresh --stack ${fleet.cfg.stack}\` shows and restores it, else \`pulumi up\` rolls the fleet onto it`,
  };
}

/** A worker image older than this gets a warning: the seeds patch the base image monthly. */
export const IMAGE_MAX_AGE_DAYS = 30;

export async function imageFreshness(fleet: AwsFleet, now = Date.now()): Promise<Omit<Check, "name">> {
  const cfg = fleet.cfg;
  const g = await fleet.group();
  const running = g.launchTemplate ? (await templateVersion(fleet.clients, g.launchTemplate.id, g.launchTemplate.version)).imageId : undefined;
  const imageId = running ?? cfg.amiId;
  if (!imageId) return { status: "fail", detail: "kiln:amiId is not set and no launch template names an image: bake one (npm run bake-ami)" };
  const out = await fleet.clients.ec2.send(new DescribeImagesCommand({ ImageIds: [imageId] }));
  const image = out.Images?.[0];
  if (!image) return { status: "fail", detail: `the fleet's image ${imageId} does not exist any more (deregistered?): instances cannot launch; bake again and pulumi up` };
  const ageDays = (now - Date.parse(image.CreationDate ?? "")) / 86_400_000;
  const notes: string[] = [`${imageId} was baked ${duration(ageDays * 86_400)} ago`];
  let status: "ok" | "warn" = "ok";
  if (cfg.amiId && running && cfg.amiId !== running) {
    status = "warn";
    notes.push(`Pulumi.${cfg.stack}.yaml has kiln:amiId ${cfg.amiId}, not deployed yet (pulumi up)`);
  }
  if (ageDays > IMAGE_MAX_AGE_DAYS) {
    status = "warn";
    notes.push(`older than ${IMAGE_MAX_AGE_DAYS} days: bake again for the base image's security patches`);
  }
  const base = image.Tags?.find((t) => t.Key === TAG.baseImage)?.Value;
  const source = (cfg.bake.baseImage ?? "").replace(/^resolve:ssm:/, "") || AL2023_PARAMETERS[image.Architecture === "arm64" ? "arm64" : "x86_64"];
  if (base && source.startsWith("/")) {
    const latest = (await fleet.clients.ssm.send(new GetParameterCommand({ Name: source }))).Parameter?.Value;
    if (latest && latest !== base) {
      status = "warn";
      notes.push(`a newer base image exists: ${source} is ${latest}, the fleet's image was built on ${base}; bake again`);
    } else if (latest) {
      notes.push(`built on the newest base image (${base}, ${source})`);
    }
  } else if (!base) {
    notes.push(`the image has no ${TAG.baseImage} tag to compare with a newer base image`);
  }
  return { status, detail: notes.join("; ") };
}
