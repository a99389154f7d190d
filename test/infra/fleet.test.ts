import { strict as assert } from "node:assert";
import * as pulumi from "@pulumi/pulumi";
import { ACCOUNT, FakeAws, Recorded, StackRun, runStack, stackConfig } from "../support/pulumi-harness";
import { CONFIG_KEYS } from "../../infra/config-keys";
import { METRICS_NAMESPACE, METRIC_PROCESSED, WORKER_VARIABLES } from "../../worker/contract";

const json = (s: string) => JSON.parse(s);
const userDataOf = (lt: Recorded) => Buffer.from(lt.inputs.userData, "base64").toString("utf8");

/** Each stack as committed; dev has not been baked yet, so its tests record an AMI as bake-ami would. */
const STACKS = {
  prod: { amiId: undefined, min: 1, max: 5, spot: false, backlog: 3000, instanceType: "t3.medium" },
  dev: { amiId: "ami-0fedcba9876543210", min: 0, max: 2, spot: true, backlog: 600, instanceType: "t3.small" },
} as const;

for (const [stack, expected] of Object.entries(STACKS)) {
  describe(`the ${stack} stack (Pulumi.${stack}.yaml through Pulumi's mocks)`, () => {
    let run: StackRun;
    let file: ReturnType<typeof stackConfig>;
    const kiln = (key: string) => file.values[`kiln:${key}`];

    before(async () => {
      file = stackConfig(stack);
      if (expected.amiId) file.values["kiln:amiId"] = expected.amiId;
      run = await runStack(stack, file);
    });

    describe("1. work queue", () => {
      it("has a main queue and a DLQ, both encrypted, wired by redrive with maxReceiveCount", () => {
        const dlq = run.one("aws:sqs/queue:Queue", "-dlq");
        const main = run.ofType("aws:sqs/queue:Queue").find((q) => q !== dlq)!;
        assert.equal(dlq.inputs.sqsManagedSseEnabled, true);
        assert.equal(main.inputs.sqsManagedSseEnabled, true);
        assert.equal(dlq.inputs.messageRetentionSeconds, 14 * 24 * 3600);
        const redrive = json(main.inputs.redrivePolicy);
        assert.equal(redrive.deadLetterTargetArn, dlq.state.arn);
        assert.equal(redrive.maxReceiveCount, Number(kiln("maxReceiveCount") ?? CONFIG_KEYS.maxReceiveCount.default));
        assert.equal(redrive.maxReceiveCount, 3);
      });

      it("lets only the main queue dead-letter into the DLQ", () => {
        const dlq = run.one("aws:sqs/queue:Queue", "-dlq");
        const main = run.ofType("aws:sqs/queue:Queue").find((q) => q !== dlq)!;
        const allow = run.one("aws:sqs/redriveAllowPolicy:RedriveAllowPolicy");
        assert.equal(allow.inputs.queueUrl, dlq.state.url);
        assert.deepEqual(json(allow.inputs.redriveAllowPolicy), { redrivePermission: "byQueue", sourceQueueArns: [main.state.arn] });
      });

      it("hides a received message for longer than the worker may process it", () => {
        const main = run.ofType("aws:sqs/queue:Queue").find((q) => !q.name.endsWith("-dlq"))!;
        const processing = Number(kiln("processingTimeout") ?? CONFIG_KEYS.processingTimeout.default);
        assert.equal(main.inputs.visibilityTimeoutSeconds, Number(kiln("visibilityTimeout")));
        assert.ok(main.inputs.visibilityTimeoutSeconds > processing);
      });
    });

    describe("2. worker environment in SSM", () => {
      const params = () => new Map(run.ofType("aws:ssm/parameter:Parameter").map((p) => [p.inputs.name as string, p]));

      it("puts one parameter per variable under /kiln/<stack>/worker/", () => {
        for (const name of params().keys()) assert.match(name, new RegExp(`^/kiln/${stack}/worker/[A-Za-z_][A-Za-z0-9_]*$`));
        const p = params();
        const value = (v: string) => p.get(`/kiln/${stack}/worker/${v}`)?.inputs.value;
        const main = run.ofType("aws:sqs/queue:Queue").find((q) => !q.name.endsWith("-dlq"))!;
        assert.equal(value("SQS_QUEUE_URL"), main.state.url);
        assert.equal(value("SQS_MAX_MESSAGES"), "10");
        assert.equal(value("SQS_WAIT_TIME"), "20");
        assert.equal(value("SQS_VISIBILITY_TIMEOUT"), kiln("visibilityTimeout"));
        assert.equal(value("PROCESSING_TIMEOUT"), kiln("processingTimeout"));
        assert.equal(value("WORKER_DRAIN_TIMEOUT"), "60");
        assert.equal(value("LOG_LEVEL"), kiln("logLevel"));
        assert.equal(value("KILN_ASG_NAME"), run.one("aws:autoscaling/group:Group").inputs.name);
        assert.equal(value("WORKER_COMMAND"), kiln("workerCommand"));
        assert.equal(value("WORKER_HANDLER"), kiln("workerHandler"));
        // MAX_WORKERS and the recycle limits exist only when the stack sets them.
        assert.equal(value("MAX_WORKERS"), kiln("maxWorkers"));
        assert.equal(value("WORKER_MAX_LIFETIME"), kiln("workerMaxLifetime"));
        assert.equal(value("WORKER_MAX_MESSAGES"), undefined);
      });

      it("stores the application's plain variables from kiln:env as String parameters", () => {
        const env = json(kiln("env")) as Record<string, string | number>;
        assert.ok(Object.keys(env).length > 0);
        for (const [name, v] of Object.entries(env)) {
          const p = params().get(`/kiln/${stack}/worker/${name}`);
          assert.ok(p, `${name} has a parameter`);
          assert.equal(p.inputs.type, "String");
          assert.equal(p.inputs.value, String(v));
        }
        for (const p of params().values()) {
          const name = (p.inputs.name as string).split("/").pop()!;
          assert.ok(name in env || (WORKER_VARIABLES as readonly string[]).includes(name), `${name} comes from config`);
        }
      });

      it("rolls the fleet when a value changes, and only then", async () => {
        const aws = new FakeAws();
        const first = await runStack(stack, file, aws);
        const again = await runStack(stack, file, aws);
        const changed = structuredClone(file);
        changed.values["kiln:env"] = JSON.stringify({ ...json(kiln("env")), PDF_DPI: 72 });
        const third = await runStack(stack, changed, aws);

        const lt = (r: StackRun) => r.one("aws:ec2/launchTemplate:LaunchTemplate");
        const asgVersion = (r: StackRun) => {
          const g = r.one("aws:autoscaling/group:Group").inputs;
          return g.launchTemplate?.version ?? g.mixedInstancesPolicy.launchTemplate.launchTemplateSpecification.version;
        };
        assert.equal(userDataOf(lt(again)), userDataOf(lt(first)), "same values, same template");
        assert.notEqual(userDataOf(lt(third)), userDataOf(lt(first)), "a changed value changes the template");
        assert.equal(asgVersion(first), "1");
        assert.equal(asgVersion(again), "1");
        assert.equal(asgVersion(third), "2", "the group follows the template's new version: instance refresh");
      });
    });

    describe("3. IAM", () => {
      const policy = () => json(run.one("aws:iam/rolePolicy:RolePolicy").inputs.policy) as { Statement: any[] };
      const statement = (action: string) => policy().Statement.filter((s) => s.Action.includes(action));

      it("lets the worker consume only this stack's main queue", () => {
        const main = run.ofType("aws:sqs/queue:Queue").find((q) => !q.name.endsWith("-dlq"))!;
        const [s] = statement("sqs:ReceiveMessage");
        assert.deepEqual(s.Action.sort(), ["sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"]);
        assert.deepEqual(s.Resource, [main.state.arn]);
        const sqs = policy().Statement.flatMap((st) => st.Action).filter((a: string) => a.startsWith("sqs:"));
        assert.equal(sqs.length, 4, "no other SQS action anywhere");
      });

      it("lets it read and decrypt only parameters under its own prefix", () => {
        const [read] = statement("ssm:GetParametersByPath");
        const arn = `arn:aws:ssm:ap-northeast-1:${ACCOUNT}:parameter/kiln/${stack}/worker`;
        assert.deepEqual(read.Resource, [arn, `${arn}/*`]);
        const [decrypt] = statement("kms:Decrypt");
        assert.equal(decrypt.Condition.StringEquals["kms:ViaService"], "ssm.ap-northeast-1.amazonaws.com");
        assert.equal(decrypt.Condition.StringLike["kms:EncryptionContext:PARAMETER_ARN"], `${arn}/*`);
      });

      it("lets it complete and heartbeat this group's lifecycle hook and mark itself unhealthy", () => {
        const [s] = statement("autoscaling:CompleteLifecycleAction");
        assert.deepEqual(s.Action.sort(), [
          "autoscaling:CompleteLifecycleAction",
          "autoscaling:RecordLifecycleActionHeartbeat",
          "autoscaling:SetInstanceHealth",
        ]);
        assert.deepEqual(s.Resource, [
          `arn:aws:autoscaling:ap-northeast-1:${ACCOUNT}:autoScalingGroup:*:autoScalingGroupName/kiln-${stack}-workers`,
        ]);
      });

      it("lets it put metrics only in kiln's namespaces and write only its own log group", () => {
        const [metrics] = statement("cloudwatch:PutMetricData");
        assert.ok(metrics.Condition.StringEquals["cloudwatch:namespace"].includes(METRICS_NAMESPACE));
        const [logs] = statement("logs:PutLogEvents");
        const group = run.one("aws:cloudwatch/logGroup:LogGroup");
        assert.equal(group.inputs.name, `/kiln/${stack}/worker`);
        assert.deepEqual(logs.Resource, [group.state.arn, `${group.state.arn}:log-stream:*`]);
      });

      it("names no '*' resource for SQS, SSM, S3 or Auto Scaling actions", () => {
        for (const s of policy().Statement) {
          const scoped = s.Action.some((a: string) => /^(sqs|ssm|s3|autoscaling):/.test(a));
          if (scoped) assert.ok(s.Resource.every((r: string) => r !== "*" && !/:\*$/.test(r)), `${s.Sid} is scoped`);
        }
      });

      it("grants the application's S3 access from config, prefix by prefix", () => {
        const grants = json(kiln("s3Access") ?? "[]") as string[];
        const s3 = policy().Statement.filter((s) => s.Action.some((a: string) => a.startsWith("s3:")));
        if (grants.length === 0) return assert.equal(s3.length, 0);
        const resources = s3.flatMap((s) => s.Action.map((a: string) => `${a} ${s.Resource.join(",")}`)).sort();
        assert.deepEqual(resources, [
          "s3:AbortMultipartUpload arn:aws:s3:::cis-filesearch-storage/failed/*",
          "s3:AbortMultipartUpload arn:aws:s3:::cis-filesearch-storage/processed/*",
          "s3:GetObject arn:aws:s3:::cis-filesearch-storage/uploads/*",
          "s3:ListBucket arn:aws:s3:::cis-filesearch-storage",
          "s3:PutObject arn:aws:s3:::cis-filesearch-storage/failed/*",
          "s3:PutObject arn:aws:s3:::cis-filesearch-storage/processed/*",
        ]);
        const list = s3.find((s) => s.Action.includes("s3:ListBucket"));
        assert.deepEqual(list.Condition, { StringLike: { "s3:prefix": ["uploads/*"] } });
      });

      it("gives the instance Session Manager instead of SSH, through its instance profile", () => {
        const role = run.one("aws:iam/role:Role");
        assert.deepEqual(json(role.inputs.assumeRolePolicy).Statement[0].Principal, { Service: "ec2.amazonaws.com" });
        const attached = run.one("aws:iam/rolePolicyAttachment:RolePolicyAttachment");
        assert.equal(attached.inputs.policyArn, "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore");
        assert.equal(attached.inputs.role, role.state.name);
        assert.equal(run.one("aws:iam/instanceProfile:InstanceProfile").inputs.role, role.state.name);
        assert.equal(run.one("aws:ec2/launchTemplate:LaunchTemplate").inputs.keyName, undefined);
      });
    });

    it("4. security group: no ingress at all, HTTPS egress only", () => {
      const sg = run.one("aws:ec2/securityGroup:SecurityGroup");
      assert.deepEqual(sg.inputs.ingress ?? [], []);
      assert.equal(sg.inputs.egress.length, 1);
      assert.deepEqual([sg.inputs.egress[0].protocol, sg.inputs.egress[0].fromPort, sg.inputs.egress[0].toPort], ["tcp", 443, 443]);
      assert.equal(sg.inputs.vpcId, "vpc-0a0a0a0a0a0a0a0a0", "in the subnets' VPC");
    });

    describe("5. launch template", () => {
      it("launches the baked AMI with IMDSv2 only, an encrypted gp3 root and detailed monitoring", () => {
        const lt = run.one("aws:ec2/launchTemplate:LaunchTemplate").inputs;
        assert.equal(lt.imageId, expected.amiId ?? kiln("amiId"));
        assert.equal(lt.instanceType, expected.instanceType);
        assert.equal(lt.iamInstanceProfile.arn, run.one("aws:iam/instanceProfile:InstanceProfile").state.arn);
        assert.equal(lt.metadataOptions.httpTokens, "required");
        assert.equal(lt.metadataOptions.httpEndpoint, "enabled");
        const [root] = lt.blockDeviceMappings;
        assert.equal(root.deviceName, "/dev/xvda");
        assert.deepEqual([root.ebs.volumeType, root.ebs.encrypted, root.ebs.volumeSize], ["gp3", "true", 30]);
        assert.equal(lt.monitoring.enabled, true);
        assert.deepEqual(lt.vpcSecurityGroupIds, [run.one("aws:ec2/securityGroup:SecurityGroup").state.id ?? lt.vpcSecurityGroupIds[0]]);
        for (const spec of lt.tagSpecifications) assert.equal(spec.tags["kiln:stack"], stack);
      });

      it("has user data that only points the instance at its SSM prefix and region", () => {
        const text = userDataOf(run.one("aws:ec2/launchTemplate:LaunchTemplate"));
        assert.match(text, /^#cloud-config\n/);
        assert.match(text, new RegExp(`KILN_SSM_PREFIX=/kiln/${stack}/worker/`));
        assert.match(text, /AWS_REGION=ap-northeast-1/);
        const lines = text.split("\n").filter((l) => /^\s+[A-Z_]+=/.test(l)).map((l) => l.trim().split("=")[0]);
        assert.deepEqual(lines, ["KILN_SSM_PREFIX", "AWS_REGION", "KILN_ENV_DIGEST"]);
      });
    });

    describe("6. Auto Scaling group", () => {
      const group = () => run.one("aws:autoscaling/group:Group");

      it("spans the configured subnets with min and max from config, leaving desired capacity to scaling", () => {
        const g = group();
        assert.deepEqual(g.inputs.vpcZoneIdentifiers, json(kiln("subnetIds")));
        assert.equal(g.inputs.minSize, expected.min);
        assert.equal(g.inputs.maxSize, expected.max);
        assert.equal(g.inputs.desiredCapacity, undefined);
        const opts = run.constructed.find((c) => c.type === "aws:autoscaling/group:Group")!.opts;
        assert.ok(opts.ignoreChanges?.includes("desiredCapacity"));
      });

      it("pins the launch template's latest version number, never $Latest", () => {
        const g = group().inputs;
        const lt = run.one("aws:ec2/launchTemplate:LaunchTemplate");
        const spec = g.launchTemplate ?? g.mixedInstancesPolicy.launchTemplate.launchTemplateSpecification;
        const id = spec.id ?? spec.launchTemplateId;
        assert.equal(id, lt.state.id ?? id);
        assert.equal(spec.version, String(lt.state.latestVersion));
        assert.doesNotMatch(JSON.stringify(g), /\$Latest|\$Default/);
      });

      it("rolls instances on template change: min healthy 90%, warm-up 300 s", () => {
        const g = group().inputs;
        assert.equal(g.instanceRefresh.strategy, "Rolling");
        assert.equal(g.instanceRefresh.preferences.minHealthyPercentage, 90);
        assert.equal(g.instanceRefresh.preferences.maxHealthyPercentage, 200, "replacements launch before old instances go");
        assert.equal(g.instanceRefresh.preferences.instanceWarmup, "300");
        assert.equal(g.defaultInstanceWarmup, 300);
      });

      it("enables group metrics at one-minute granularity", () => {
        const g = group().inputs;
        assert.ok(g.enabledMetrics.includes("GroupInServiceInstances"));
        assert.ok(g.enabledMetrics.includes("GroupDesiredCapacity"));
        assert.equal(g.metricsGranularity, "1Minute");
      });

      it("holds a terminating instance long enough for its worker to drain", () => {
        const hook = run.one("aws:autoscaling/lifecycleHook:LifecycleHook").inputs;
        assert.equal(hook.lifecycleTransition, "autoscaling:EC2_INSTANCE_TERMINATING");
        assert.equal(hook.autoscalingGroupName, group().state.name);
        assert.ok(hook.heartbeatTimeout > Number(kiln("drainTimeout") ?? 60));
        assert.equal(hook.defaultResult, "CONTINUE");
        const p = run.ofType("aws:ssm/parameter:Parameter").find((x) => x.inputs.name.endsWith("/KILN_LIFECYCLE_HOOK"))!;
        assert.equal(p.inputs.value, hook.name);
      });

      it(expected.spot ? "runs on Spot through a mixed instances policy" : "runs on demand, no mixed instances policy", () => {
        const g = group().inputs;
        if (!expected.spot) {
          assert.equal(g.mixedInstancesPolicy, undefined);
          assert.ok(g.launchTemplate);
          return;
        }
        assert.equal(g.launchTemplate, undefined, "a mixed instances policy replaces the plain template");
        const mip = g.mixedInstancesPolicy;
        assert.equal(mip.instancesDistribution.onDemandPercentageAboveBaseCapacity, 0);
        assert.equal(mip.instancesDistribution.spotAllocationStrategy, "price-capacity-optimized");
        assert.deepEqual(mip.launchTemplate.overrides.map((o: any) => o.instanceType), json(kiln("spotInstanceTypes")));
        assert.equal(g.capacityRebalance, true);
      });
    });

    describe("7. backlog-per-instance scaling", () => {
      it("tracks visible messages / in-service instances at latency / processing time", () => {
        const policy = run.ofType("aws:autoscaling/policy:Policy").find((p) => p.inputs.policyType === "TargetTrackingScaling")!;
        const tt = policy.inputs.targetTrackingConfiguration;
        assert.equal(tt.targetValue, expected.backlog);
        const metrics = tt.customizedMetricSpecification.metrics;
        const byId = Object.fromEntries(metrics.map((m: any) => [m.id, m]));
        const main = run.ofType("aws:sqs/queue:Queue").find((q) => !q.name.endsWith("-dlq"))!;
        assert.equal(byId.visible.metricStat.metric.metricName, "ApproximateNumberOfMessagesVisible");
        assert.deepEqual(byId.visible.metricStat.metric.dimensions, [{ name: "QueueName", value: main.state.name }]);
        assert.equal(byId.inservice.metricStat.metric.metricName, "GroupInServiceInstances");
        assert.deepEqual(byId.inservice.metricStat.metric.dimensions, [{ name: "AutoScalingGroupName", value: `kiln-${stack}-workers` }]);
        const returned = metrics.filter((m: any) => m.returnData);
        assert.equal(returned.length, 1);
        assert.equal(returned[0].expression, "visible / inservice");
        assert.equal(policy.inputs.estimatedInstanceWarmup, 60, "scale-out cooldown 60 s");
        assert.equal(run.one("aws:autoscaling/group:Group").inputs.defaultCooldown, 300, "scale-in cooldown 300 s");
      });

      it(expected.min === 0 ? "starts one instance from zero when messages arrive" : "needs no from-zero policy above a minimum of 0", () => {
        const steps = run.ofType("aws:autoscaling/policy:Policy").filter((p) => p.inputs.policyType === "StepScaling");
        if (expected.min > 0) return assert.equal(steps.length, 0);
        assert.equal(steps.length, 1);
        const [step] = steps;
        assert.equal(step.inputs.adjustmentType, "ExactCapacity");
        assert.deepEqual(step.inputs.stepAdjustments, [{ metricIntervalLowerBound: "0", scalingAdjustment: 1 }]);
        const alarm = run.one("aws:cloudwatch/metricAlarm:MetricAlarm", "from-zero");
        assert.deepEqual(alarm.inputs.alarmActions, [step.state.arn]);
        const expr = alarm.inputs.metricQueries.find((q: any) => q.returnData).expression;
        assert.equal(expr, "IF(visible > 0 AND desired == 0, 1, 0)");
        const desired = alarm.inputs.metricQueries.find((q: any) => q.id === "desired");
        assert.equal(desired.metric.metricName, "GroupDesiredCapacity");
      });
    });

    describe("8. alarms and dashboard", () => {
      const alarm = (part: string) => run.one("aws:cloudwatch/metricAlarm:MetricAlarm", part).inputs;

      it("alarms on a non-empty DLQ, an old message and a backlog with no worker, to one SNS topic", () => {
        const topic = run.one("aws:sns/topic:Topic").state.arn;
        const dlq = run.one("aws:sqs/queue:Queue", "-dlq");
        assert.deepEqual(alarm("dlq-not-empty").dimensions, { QueueName: dlq.state.name });
        assert.equal(alarm("dlq-not-empty").threshold, 0);
        assert.equal(alarm("oldest-message").metricName, "ApproximateAgeOfOldestMessage");
        assert.equal(alarm("oldest-message").threshold, Number(kiln("acceptableLatency")));
        const stranded = alarm("backlog-without-workers").metricQueries;
        assert.ok(stranded.some((q: any) => q.metric?.metricName === "GroupInServiceInstances"));
        for (const part of ["dlq-not-empty", "oldest-message", "backlog-without-workers"]) {
          assert.deepEqual(alarm(part).alarmActions, [topic]);
        }
      });

      it("subscribes the configured email, if any", () => {
        const subs = run.ofType("aws:sns/topicSubscription:TopicSubscription");
        if (!kiln("alarmEmail")) return assert.equal(subs.length, 0);
        assert.equal(subs.length, 1);
        assert.deepEqual([subs[0].inputs.protocol, subs[0].inputs.endpoint], ["email", kiln("alarmEmail")]);
      });

      it("has one dashboard with backlog, oldest age, instances, CPU, DLQ depth and worker throughput", () => {
        const body = json(run.one("aws:cloudwatch/dashboard:Dashboard").inputs.dashboardBody);
        const metrics = body.widgets.flatMap((w: any) => w.properties.metrics.map((m: string[]) => m.join(" ")));
        const text = metrics.join("\n");
        for (const m of ["ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage", "GroupInServiceInstances", "CPUUtilization", METRIC_PROCESSED]) {
          assert.ok(text.includes(m), `dashboard shows ${m}`);
        }
        const dlq = run.one("aws:sqs/queue:Queue", "-dlq");
        assert.ok(text.includes(`AWS/SQS ApproximateNumberOfMessagesVisible QueueName ${dlq.state.name}`));
        assert.ok(text.includes(`${METRICS_NAMESPACE} ${METRIC_PROCESSED} Stack ${stack}`));
      });
    });

    it("exports what an operator needs", () => {
      const main = run.ofType("aws:sqs/queue:Queue").find((q) => !q.name.endsWith("-dlq"))!;
      assert.equal(run.outputs.queueUrl, main.state.url);
      assert.equal(run.outputs.deadLetterQueueUrl, run.one("aws:sqs/queue:Queue", "-dlq").state.url);
      assert.equal(run.outputs.autoScalingGroupName, `kiln-${stack}-workers`);
      assert.match(run.outputs.launchTemplateId, /^lt-/);
      assert.equal(run.outputs.ssmPrefix, `/kiln/${stack}/worker/`);
      assert.equal(
        run.outputs.dashboardUrl,
        `https://ap-northeast-1.console.aws.amazon.com/cloudwatch/home?region=ap-northeast-1#dashboards:name=kiln-${stack}`,
      );
    });

    it("parents every resource to a kiln component named from the stack", () => {
      const components = run.resources.filter((r) => r.type.startsWith("kiln:"));
      assert.deepEqual(
        components.map((c) => c.type).sort(),
        [
          "kiln:compute:WorkerFleet",
          "kiln:compute:WorkerLaunchTemplate",
          "kiln:iam:WorkerRole",
          "kiln:monitoring:FleetMonitoring",
          "kiln:network:WorkerSecurityGroup",
          "kiln:queue:WorkQueue",
          "kiln:scaling:BacklogScaling",
          "kiln:worker:WorkerEnvironment",
        ],
      );
      for (const c of run.constructed.filter((x) => x.type.startsWith("aws:") && x.type !== "aws:cloudwatch/logGroup:LogGroup")) {
        assert.ok(c.opts.parent && c.opts.parent !== pulumi.runtime.getStackResource(), `${c.type} ${c.name} has a component parent`);
        assert.ok(c.name.startsWith(`kiln-${stack}-`), `${c.name} is named from its component`);
      }
    });
  });
}
