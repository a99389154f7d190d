// The kiln fleet of one stack: `pulumi up --stack <stack>`. Reads like docs/architecture.md's diagram.
import * as pulumi from "@pulumi/pulumi";
import * as aws from "@pulumi/aws";
import { fleetTags, loadDeployment } from "./infra/stack-config";
import { isBurstable } from "./infra/config-checks";
import { StackKey } from "./infra/stack-key";
import { WorkQueue } from "./infra/work-queue";
import { WorkerEnvironment, workerVariables } from "./infra/worker-environment";
import { workerPolicyDocument } from "./infra/worker-policy";
import { WorkerRole } from "./infra/worker-role";
import { WorkerSecurityGroup } from "./infra/worker-security-group";
import { WorkerVpcEndpoints } from "./infra/worker-vpc-endpoints";
import { renderUserData } from "./infra/user-data";
import { WorkerLaunchTemplate } from "./infra/worker-launch-template";
import { WorkerFleet } from "./infra/worker-fleet";
import { BacklogScaling } from "./infra/backlog-scaling";
import { FleetMonitoring } from "./infra/fleet-monitoring";
import { ssmPrefix as ssmPrefixOf } from "./worker/contract";

// An async program: the config, the subnets' network and the baked image are checked before
// anything is declared, so a deploy that cannot work stops before it creates a thing. What it
// returns are the stack outputs.
export = async () => {
  const { cfg, network, image } = await loadDeployment();
  const name = `kiln-${cfg.stack}`;
  const tags = fleetTags(cfg);
  const prefix = ssmPrefixOf(cfg.stack);
  const groupName = `${name}-workers`;
  const workerLogGroup = `/kiln/${cfg.stack}/worker`;
  const alarmTopicName = `${name}-alarms`;
  // Stack names hold no ".": no other stack's alarm names start with this.
  const alarmNamePrefix = `${name}.`;
  const instanceTypes = cfg.spot && cfg.spotInstanceTypes.length ? cfg.spotInstanceTypes : [cfg.instanceType];
  const burstable = instanceTypes.every(isBurstable);

  const account = aws.getCallerIdentityOutput();
  const partition = aws.getPartitionOutput().partition;
  // The role or user behind the deploy's session: a session ARN cannot be named in a key policy.
  const deployer = aws.iam.getSessionContextOutput({ arn: account.arn });

  const work = new WorkQueue(`${name}-work`, {
    maxReceiveCount: cfg.maxReceiveCount,
    visibilityTimeoutSeconds: cfg.visibilityTimeout,
    messageRetentionSeconds: cfg.messageRetentionDays * 24 * 3600,
    receiveWaitTimeSeconds: cfg.sqsWaitTime,
    accountId: account.accountId,
    senders: cfg.queueSenders,
    tags,
  });

  const logs = new aws.cloudwatch.LogGroup(`${name}-worker-logs`, {
    name: workerLogGroup,
    retentionInDays: cfg.logRetentionDays,
    tags,
  });

  const role = new WorkerRole(`${name}-worker`, { tags });

  const key = new StackKey(`${name}-key`, {
    stack: cfg.stack,
    scope: pulumi.all([partition, account.accountId, deployer.issuerArn, role.role.arn]).apply(([p, accountId, deployerArn, workerRoleArn]) => ({
      partition: p,
      region: cfg.region,
      accountId,
      deployerArn,
      workerRoleArn,
      ssmPrefix: prefix,
      alarmTopicArn: `arn:${p}:sns:${cfg.region}:${accountId}:${alarmTopicName}`,
      alarmNamePrefix,
    })),
    tags,
  });

  role.grant(
    pulumi.all([partition, account.accountId, work.queue.arn, logs.arn, key.key.arn]).apply(([p, accountId, queueArn, logGroupArn, keyArn]) =>
      workerPolicyDocument({
        partition: p,
        region: cfg.region,
        accountId,
        queueArn,
        ssmPrefix: prefix,
        asgName: groupName,
        logGroupArn,
        keyArn,
        s3Access: cfg.s3Access,
      }),
    ),
  );

  const environment = new WorkerEnvironment(`${name}-env`, {
    prefix,
    plain: workerVariables(cfg, { queueUrl: work.queue.url, groupName, logGroupName: workerLogGroup }),
    secret: cfg.secretEnv,
    keyArn: key.key.arn,
    tags,
  });

  const securityGroup = new WorkerSecurityGroup(`${name}-worker`, { vpcId: network.vpcId, tags });

  if (cfg.vpcEndpoints) {
    new WorkerVpcEndpoints(`${name}-endpoints`, {
      region: cfg.region,
      vpcId: network.vpcId,
      interfaceServices: network.missingInterfaceServices,
      subnetIds: network.endpointSubnetIds,
      s3RouteTableIds: network.routeTablesWithoutS3,
      workerSecurityGroupId: securityGroup.securityGroup.id,
      tags,
    });
  }

  const template = new WorkerLaunchTemplate(`${name}-worker`, {
    amiId: cfg.amiId,
    instanceType: cfg.instanceType,
    instanceProfileArn: role.grantedInstanceProfileArn,
    securityGroupId: securityGroup.securityGroup.id,
    userData: environment.digest.apply((envDigest) => renderUserData({ ssmPrefix: prefix, region: cfg.region, envDigest })),
    rootDeviceName: image.rootDeviceName,
    rootVolumeSize: cfg.rootVolumeSize,
    cpuCredits: burstable ? cfg.cpuCredits : undefined,
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
      ? { instanceTypes, onDemandBaseCapacity: cfg.onDemandBaseCapacity, onDemandPercentageAboveBase: cfg.onDemandPercentageAboveBase }
      : undefined,
    instanceWarmup: cfg.instanceWarmup,
    refreshMinHealthyPercentage: cfg.refreshMinHealthyPercentage,
    refreshMaxHealthyPercentage: cfg.refreshMaxHealthyPercentage,
    lifecycleHeartbeatTimeout: cfg.lifecycleHeartbeatTimeout,
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
    errorRateAlarmPercent: cfg.errorRateAlarmPercent,
    watchSurplusCredits: burstable && cfg.cpuCredits === "unlimited",
    alarmEmail: cfg.alarmEmail || undefined,
    topicName: alarmTopicName,
    alarmNamePrefix,
    keyArn: key.key.arn,
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
    keyAlias: key.alias.name,
  };
};
