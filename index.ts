// The kiln fleet of one stack: `pulumi up --stack <stack>`. Reads like ARCHITECTURE.md's diagram.
import * as pulumi from "@pulumi/pulumi";
import * as aws from "@pulumi/aws";
import { fleetTags, loadFleetConfig } from "./infra/stack-config";
import { WorkQueue } from "./infra/work-queue";
import { WorkerEnvironment, workerVariables } from "./infra/worker-environment";
import { workerPolicyDocument } from "./infra/worker-policy";
import { WorkerRole } from "./infra/worker-role";
import { vpcOfSubnets, WorkerSecurityGroup } from "./infra/worker-security-group";
import { renderUserData } from "./infra/user-data";
import { WorkerLaunchTemplate } from "./infra/worker-launch-template";
import { WorkerFleet } from "./infra/worker-fleet";
import { BacklogScaling } from "./infra/backlog-scaling";
import { FleetMonitoring } from "./infra/fleet-monitoring";
import { ssmPrefix as ssmPrefixOf } from "./worker/contract";

// An async program: the subnets' VPC is looked up before anything is declared, so a bad stack
// config stops the deploy before it creates a thing. What it returns are the stack outputs.
export = async () => {
  const cfg = loadFleetConfig();
  const vpcId = await vpcOfSubnets(cfg.subnetIds);
  const name = `kiln-${cfg.stack}`;
  const tags = fleetTags(cfg);
  const prefix = ssmPrefixOf(cfg.stack);
  const groupName = `${name}-workers`;
  const workerLogGroup = `/kiln/${cfg.stack}/worker`;

  const work = new WorkQueue(`${name}-work`, {
    maxReceiveCount: cfg.maxReceiveCount,
    visibilityTimeoutSeconds: cfg.visibilityTimeout,
    messageRetentionSeconds: cfg.messageRetentionDays * 24 * 3600,
    receiveWaitTimeSeconds: cfg.sqsWaitTime,
    tags,
  });

  const logs = new aws.cloudwatch.LogGroup(`${name}-worker-logs`, {
    name: workerLogGroup,
    retentionInDays: cfg.logRetentionDays,
    tags,
  });

  const environment = new WorkerEnvironment(`${name}-env`, {
    prefix,
    plain: workerVariables(cfg, { queueUrl: work.queue.url, groupName, logGroupName: workerLogGroup }),
    secret: cfg.secretEnv,
    tags,
  });

  const account = aws.getCallerIdentityOutput();
  const partition = aws.getPartitionOutput();
  const role = new WorkerRole(`${name}-worker`, {
    partition: partition.partition,
    policy: pulumi
      .all([partition.partition, account.accountId, work.queue.arn, logs.arn])
      .apply(([partitionName, accountId, queueArn, logGroupArn]) =>
        workerPolicyDocument({
          partition: partitionName,
          region: cfg.region,
          accountId,
          queueArn,
          ssmPrefix: prefix,
          asgName: groupName,
          logGroupArn,
          s3Access: cfg.s3Access,
        }),
      ),
    tags,
  });

  const network = new WorkerSecurityGroup(`${name}-worker`, { vpcId, tags });

  const template = new WorkerLaunchTemplate(`${name}-worker`, {
    amiId: cfg.amiId,
    instanceType: cfg.instanceType,
    instanceProfileArn: role.instanceProfile.arn,
    securityGroupId: network.securityGroup.id,
    userData: environment.digest.apply((envDigest) => renderUserData({ ssmPrefix: prefix, region: cfg.region, envDigest })),
    rootDeviceName: cfg.rootDeviceName,
    rootVolumeSize: cfg.rootVolumeSize,
    tags,
  });

  const fleet = new WorkerFleet(`${name}-workers`, {
    groupName,
    subnetIds: cfg.subnetIds,
    minSize: cfg.minSize,
    maxSize: cfg.maxSize,
    launchTemplateId: template.launchTemplate.id,
    launchTemplateVersion: template.launchTemplate.latestVersion,
    spot: cfg.spot
      ? {
          instanceTypes: cfg.spotInstanceTypes.length ? cfg.spotInstanceTypes : [cfg.instanceType],
          onDemandBaseCapacity: cfg.onDemandBaseCapacity,
          onDemandPercentageAboveBase: cfg.onDemandPercentageAboveBase,
        }
      : undefined,
    instanceWarmup: cfg.instanceWarmup,
    refreshMinHealthyPercentage: cfg.refreshMinHealthyPercentage,
    drainHeartbeat: cfg.drainHeartbeat,
    defaultCooldown: cfg.scaleInCooldown,
    tags,
  });

  new BacklogScaling(`${name}-scaling`, {
    groupName: fleet.group.name,
    queueName: work.queue.name,
    backlogTarget: cfg.backlogTarget,
    minSize: cfg.minSize,
    scaleOutWarmup: cfg.scaleOutCooldown,
    tags,
  });

  const monitoring = new FleetMonitoring(`${name}-monitoring`, {
    stack: cfg.stack,
    region: cfg.region,
    queueName: work.queue.name,
    deadLetterQueueName: work.deadLetterQueue.name,
    groupName: fleet.group.name,
    acceptableLatency: cfg.acceptableLatency,
    alarmEmail: cfg.alarmEmail || undefined,
    tags,
  });

  return {
  queueUrl: work.queue.url,
  deadLetterQueueUrl: work.deadLetterQueue.url,
  autoScalingGroupName: fleet.group.name,
  launchTemplateId: template.launchTemplate.id,
  ssmPrefix: prefix,
  dashboardUrl: monitoring.dashboardUrl,
  alarmTopicArn: monitoring.topic.arn,
  logGroupName: logs.name,
  };
};
