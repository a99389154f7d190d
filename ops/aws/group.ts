import {
  AutoScalingGroup,
  CreateOrUpdateTagsCommand,
  DeleteTagsCommand,
  DescribeAutoScalingGroupsCommand,
  DescribeInstanceRefreshesCommand,
  ResumeProcessesCommand,
  SetDesiredCapacityCommand,
  SuspendProcessesCommand,
  UpdateAutoScalingGroupCommand,
} from "@aws-sdk/client-auto-scaling";
import { DescribeLaunchTemplatesCommand } from "@aws-sdk/client-ec2";
import { NotFoundError, UsageError } from "../exit";
import type { GroupView, PauseRecord, PauseResult, RefreshView, ResumeResult } from "../fleet";
import { awsCall, isAwsError } from "./call";
import type { AwsClients } from "./clients";

/** The group tag `pause` leaves, holding what `resume` puts back. */
export const PAUSE_TAG = "kiln:paused";
/**
 * Suspended while paused: AlarmNotification stops the backlog policies (target tracking and the
 * from-zero step) from raising the count again; ScheduledActions any schedule someone added.
 * Launch and Terminate stay: the drain lifecycle hook needs Terminate to let instances go.
 */
export const PAUSED_PROCESSES = ["AlarmNotification", "ScheduledActions"];

export async function describeGroup(c: AwsClients, name: string): Promise<AutoScalingGroup> {
  const out = await awsCall(`reading the Auto Scaling group ${name}`, () =>
    c.autoscaling.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [name] })),
  );
  const group = out.AutoScalingGroups?.[0];
  if (!group) throw new NotFoundError(`no Auto Scaling group ${name} in ${c.settings.region}: is the stack deployed here (\`pulumi up\`, --region)?`);
  return group;
}

export async function latestRefresh(c: AwsClients, name: string): Promise<RefreshView | undefined> {
  const out = await awsCall(`reading the instance refreshes of ${name}`, () =>
    c.autoscaling.send(new DescribeInstanceRefreshesCommand({ AutoScalingGroupName: name, MaxRecords: 1 })),
  );
  const r = out.InstanceRefreshes?.[0];
  if (!r) return undefined;
  return {
    id: r.InstanceRefreshId!,
    status: r.Status!,
    percentage: r.PercentageComplete,
    instancesToUpdate: r.InstancesToUpdate,
    started: r.StartTime?.toISOString(),
    reason: r.StatusReason,
  };
}

export const REFRESH_ACTIVE = ["Pending", "InProgress", "Cancelling", "RollbackInProgress", "Baking"];

export async function groupView(c: AwsClients, name: string): Promise<GroupView> {
  const g = await describeGroup(c, name);
  const spec = g.LaunchTemplate ?? g.MixedInstancesPolicy?.LaunchTemplate?.LaunchTemplateSpecification;
  let latest: string | undefined;
  if (spec?.LaunchTemplateId) {
    const lt = await awsCall(`reading the launch template ${spec.LaunchTemplateId}`, () =>
      c.ec2.send(new DescribeLaunchTemplatesCommand({ LaunchTemplateIds: [spec.LaunchTemplateId!] })),
    );
    latest = lt.LaunchTemplates?.[0]?.LatestVersionNumber?.toString();
  }
  const refresh = await latestRefresh(c, name);
  const instances = (g.Instances ?? []).map((i) => ({
    id: i.InstanceId!,
    state: i.LifecycleState ?? "?",
    health: i.HealthStatus,
    version: i.LaunchTemplate?.Version,
    type: i.InstanceType,
    zone: i.AvailabilityZone,
  }));
  const count = (pred: (s: string) => boolean) => instances.filter((i) => pred(i.state)).length;
  return {
    name,
    min: g.MinSize ?? 0,
    max: g.MaxSize ?? 0,
    desired: g.DesiredCapacity ?? 0,
    inService: count((s) => s === "InService"),
    pending: count((s) => s.startsWith("Pending")),
    terminating: count((s) => s.startsWith("Terminating")),
    instances,
    launchTemplate: spec?.LaunchTemplateId ? { id: spec.LaunchTemplateId, version: spec.Version ?? "$Default", latest } : undefined,
    suspended: (g.SuspendedProcesses ?? []).map((p) => p.ProcessName!),
    paused: pauseRecordOf(g),
    refresh,
  };
}

function pauseRecordOf(g: AutoScalingGroup): PauseRecord | undefined {
  const raw = g.Tags?.find((t) => t.Key === PAUSE_TAG)?.Value;
  if (!raw) return undefined;
  try {
    return JSON.parse(raw) as PauseRecord;
  } catch {
    return undefined;
  }
}

export async function setDesired(c: AwsClients, name: string, n: number): Promise<void> {
  const g = await describeGroup(c, name);
  if (pauseRecordOf(g)) throw new UsageError(`the group ${name} is paused: resume it first (kiln resume), or scale stays at 0 until then`);
  if (n < (g.MinSize ?? 0) || n > (g.MaxSize ?? 0)) {
    // AWS: "The DesiredCapacity must be between MinSize and MaxSize" (ValidationError); said before calling.
    throw new UsageError(`--desired ${n} is outside the group's ${g.MinSize} to ${g.MaxSize} instances: change kiln:minSize or kiln:maxSize and run pulumi up to go beyond`);
  }
  await awsCall(`setting the desired capacity of ${name} to ${n}`, () =>
    c.autoscaling.send(new SetDesiredCapacityCommand({ AutoScalingGroupName: name, DesiredCapacity: n, HonorCooldown: false })),
  );
}

const PULUMI_NOTE = (stack: string, min: number) =>
  `Pulumi owns the group's minSize (kiln:minSize ${min}) and its suspended processes: a \`pulumi up --stack ${stack}\` that refreshes ` +
  `the group (--refresh) or changes it puts minSize back to ${min} and resumes the processes, which ends the pause ` +
  `without draining anything. Resume with \`npm run kiln -- resume --stack ${stack}\` before deploying, or pause again after.`;

export async function pauseGroup(c: AwsClients, stack: string, name: string): Promise<PauseResult> {
  const g = await describeGroup(c, name);
  const existing = pauseRecordOf(g);
  if (existing) return { already: true, record: existing, note: PULUMI_NOTE(stack, existing.min) };
  const record: PauseRecord = {
    at: new Date().toISOString(),
    min: g.MinSize ?? 0,
    desired: g.DesiredCapacity ?? 0,
    suspended: PAUSED_PROCESSES.filter((p) => !(g.SuspendedProcesses ?? []).some((s) => s.ProcessName === p)),
  };
  // Recorded first: a pause interrupted after this point can still be resumed to where it was.
  await awsCall(`tagging ${name} as paused`, () =>
    c.autoscaling.send(
      new CreateOrUpdateTagsCommand({
        Tags: [{ ResourceId: name, ResourceType: "auto-scaling-group", Key: PAUSE_TAG, Value: JSON.stringify(record), PropagateAtLaunch: false }],
      }),
    ),
  );
  if (record.suspended.length) {
    await awsCall(`suspending ${record.suspended.join(", ")} on ${name}`, () =>
      c.autoscaling.send(new SuspendProcessesCommand({ AutoScalingGroupName: name, ScalingProcesses: record.suspended })),
    );
  }
  await awsCall(`setting ${name} to 0 instances`, () =>
    c.autoscaling.send(new UpdateAutoScalingGroupCommand({ AutoScalingGroupName: name, MinSize: 0, DesiredCapacity: 0 })),
  );
  return { already: false, record, note: PULUMI_NOTE(stack, record.min) };
}

export async function resumeGroup(c: AwsClients, name: string): Promise<ResumeResult> {
  const g = await describeGroup(c, name);
  const record = pauseRecordOf(g);
  if (!record) return { wasPaused: false, min: g.MinSize ?? 0, desired: g.DesiredCapacity ?? 0, note: "the group was not paused" };
  const desired = Math.min(g.MaxSize ?? record.desired, Math.max(record.min, record.desired));
  await awsCall(`restoring ${name} to ${record.min} to ${g.MaxSize} instances, ${desired} desired`, () =>
    c.autoscaling.send(new UpdateAutoScalingGroupCommand({ AutoScalingGroupName: name, MinSize: record.min, DesiredCapacity: desired })),
  );
  if (record.suspended.length) {
    await awsCall(`resuming ${record.suspended.join(", ")} on ${name}`, () =>
      c.autoscaling.send(new ResumeProcessesCommand({ AutoScalingGroupName: name, ScalingProcesses: record.suspended })),
    );
  }
  try {
    await c.autoscaling.send(new DeleteTagsCommand({ Tags: [{ ResourceId: name, ResourceType: "auto-scaling-group", Key: PAUSE_TAG }] }));
  } catch (e) {
    if (!isAwsError(e, "ValidationError")) throw e;
  }
  return {
    wasPaused: true,
    min: record.min,
    desired,
    note: "the backlog policies act again: target tracking moves the count to what the backlog needs within minutes",
  };
}
