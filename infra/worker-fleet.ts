import * as pulumi from "@pulumi/pulumi";
import * as aws from "@pulumi/aws";
import { DRAIN_LIFECYCLE_HOOK } from "../worker/contract";

export interface SpotCapacity {
  instanceTypes: string[];
  onDemandBaseCapacity: number;
  onDemandPercentageAboveBase: number;
}

export interface WorkerFleetArgs {
  /** Fixed so the worker's IAM policy and SSM environment can name the group before it exists. */
  groupName: string;
  subnetIds: string[];
  minSize: number;
  maxSize: number;
  launchTemplateId: pulumi.Input<string>;
  /** A version number: `$Latest` would hide template changes from instance refresh. */
  launchTemplateVersion: pulumi.Input<number>;
  /** Spot capacity through a mixed instances policy; absent, on-demand only. */
  spot?: SpotCapacity;
  instanceWarmup: number;
  refreshMinHealthyPercentage: number;
  /** At most refreshMinHealthyPercentage + 100 (config-checks.ts). */
  refreshMaxHealthyPercentage: number;
  /**
   * The terminate hook's heartbeat timeout: the worker heartbeats while it drains, so this bounds
   * how long an instance whose worker is gone is held, not how long a drain may take.
   */
  lifecycleHeartbeatTimeout: number;
  /** The scale-in cooldown of simple policies. */
  defaultCooldown: number;
  tags: Record<string, string>;
}

/** CloudWatch group metrics the scaling policies, alarms and dashboard read. */
export const GROUP_METRICS: aws.autoscaling.Metric[] = [
  "GroupMinSize",
  "GroupMaxSize",
  "GroupDesiredCapacity",
  "GroupInServiceInstances",
  "GroupPendingInstances",
  "GroupTerminatingInstances",
  "GroupTotalInstances",
];

/** The Auto Scaling group of workers, rolled by instance refresh whenever the launch template changes. */
export class WorkerFleet extends pulumi.ComponentResource {
  readonly group: aws.autoscaling.Group;
  readonly drainHook: aws.autoscaling.LifecycleHook;

  constructor(name: string, args: WorkerFleetArgs, opts?: pulumi.ComponentResourceOptions) {
    super("kiln:compute:WorkerFleet", name, {}, opts);

    const template = { id: args.launchTemplateId, version: pulumi.output(args.launchTemplateVersion).apply(String) };
    const spot = args.spot;

    this.group = new aws.autoscaling.Group(
      name,
      {
        name: args.groupName,
        vpcZoneIdentifiers: args.subnetIds,
        minSize: args.minSize,
        maxSize: args.maxSize,
        launchTemplate: spot ? undefined : template,
        mixedInstancesPolicy: spot
          ? {
              instancesDistribution: {
                onDemandBaseCapacity: spot.onDemandBaseCapacity,
                onDemandPercentageAboveBaseCapacity: spot.onDemandPercentageAboveBase,
                spotAllocationStrategy: "price-capacity-optimized",
              },
              launchTemplate: {
                launchTemplateSpecification: { launchTemplateId: template.id, version: template.version },
                overrides: spot.instanceTypes.map((instanceType) => ({ instanceType })),
              },
            }
          : undefined,
        // Replace a Spot instance when AWS warns it is at risk, before the interruption.
        capacityRebalance: spot ? true : undefined,
        defaultInstanceWarmup: args.instanceWarmup,
        healthCheckType: "EC2",
        healthCheckGracePeriod: args.instanceWarmup,
        defaultCooldown: args.defaultCooldown,
        instanceRefresh: {
          strategy: "Rolling",
          preferences: {
            minHealthyPercentage: args.refreshMinHealthyPercentage,
            // Above 100: replacements launch before old instances go, so capacity need not dip.
            maxHealthyPercentage: args.refreshMaxHealthyPercentage,
            instanceWarmup: String(args.instanceWarmup),
          },
        },
        enabledMetrics: GROUP_METRICS,
        metricsGranularity: "1Minute",
        tags: Object.entries({ Name: args.groupName, ...args.tags }).map(([key, value]) => ({
          key,
          value,
          propagateAtLaunch: true,
        })),
      },
      // The scaling policies own the desired capacity; a deploy must not reset it.
      { parent: this, ignoreChanges: ["desiredCapacity"] },
    );

    this.drainHook = new aws.autoscaling.LifecycleHook(
      `${name}-drain`,
      {
        name: DRAIN_LIFECYCLE_HOOK,
        autoscalingGroupName: this.group.name,
        lifecycleTransition: "autoscaling:EC2_INSTANCE_TERMINATING",
        heartbeatTimeout: args.lifecycleHeartbeatTimeout,
        // Past the heartbeat the instance goes anyway: a stuck drain must not block scale-in.
        defaultResult: "CONTINUE",
      },
      { parent: this },
    );

    this.registerOutputs({ groupName: this.group.name });
  }
}
