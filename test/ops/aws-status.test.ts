import { strict as assert } from "node:assert";
import { PutMetricDataCommand } from "@aws-sdk/client-cloudwatch";
import { SendMessageBatchCommand } from "@aws-sdk/client-sqs";
import { AwsFault } from "../support/fake-aws/aws-proxy";
import { DeployedStack, deployedStackSuite } from "./support/deployed-stack";

describe("kiln status, eta and plan against a deployed stack (moto)", function () {
  this.timeout(120_000);
  let stack!: DeployedStack;
  deployedStackSuite((s) => (stack = s));

  before(async () => {
    // 1,250 waiting, the oldest 7 minutes; the workers processed 200 a minute for the last 30
    // minutes, 3 failures a minute in 5 of them. Thirty, not fifteen: the rate's 15-minute window
    // moves on with the clock, and a slow machine reaches the eta test minutes after this.
    for (let i = 0; i < 1250; i += 10) {
      await stack.sqs.send(new SendMessageBatchCommand({ QueueUrl: stack.queueUrl, Entries: Array.from({ length: 10 }, (_, j) => ({ Id: String(j), MessageBody: `{"n":${i + j}}` })) }));
    }
    await stack.sqs.send(new SendMessageBatchCommand({ QueueUrl: stack.dlqUrl, Entries: [{ Id: "0", MessageBody: "poison" }] }));
    await stack.putThroughput(Array.from({ length: 30 }, (_, i) => ({ minutesAgo: i, processed: 200, failed: i >= 2 && i < 7 ? 3 : 0 })));
    await stack.cloudwatch.send(
      new PutMetricDataCommand({
        Namespace: "AWS/SQS",
        MetricData: [{ MetricName: "ApproximateAgeOfOldestMessage", Dimensions: [{ Name: "QueueName", Value: "kiln-prod-work-5d6e7f8" }], Timestamp: new Date(Date.now() - 60_000), Value: 420 }],
      }),
    );
    await stack.setAlarm("ALARM");
    stack.refresh.add({ group: stack.names.groupName, status: "InProgress", percentage: 40, instancesToUpdate: 1 });
  });

  it("status: depths, oldest age, processed a minute from the workers' counts, ETA, instances, refresh, alarms", async () => {
    const r = await stack.run(["status", "--json"]);
    assert.equal(r.code, 0, r.err);
    const s = r.json();
    assert.equal(s.kind, "aws");
    assert.deepEqual([s.queue.visible, s.queue.inFlight, s.queue.delayed, s.queue.oldestAgeSeconds], [1250, 0, 0, 420]);
    assert.equal(s.dlq.visible, 1);
    assert.equal(s.throughput.processed5, 200, "the last five whole minutes, 200 each");
    assert.equal(s.throughput.processed15, 200);
    assert.equal(s.throughput.failed15, 1, "15 failures over 15 minutes");
    assert.equal(s.eta.messages, 1250);
    assert.equal(Math.round(s.eta.seconds), 375, "1,250 at 200 a minute");
    assert.deepEqual([s.group.desired, s.group.inService, s.group.min, s.group.max], [2, 2, 1, 5]);
    assert.ok(s.group.instances.every((i: { version: string; health: string }) => i.version === "1" && i.health === "Healthy"));
    assert.equal(s.group.refresh.status, "InProgress");
    assert.deepEqual(s.alarms.map((a: { name: string }) => a.name), ["kiln-prod-monitoring-dlq-not-empty-0a1b2c3"]);

    const human = await stack.run(["status"]);
    assert.match(human.out, /^ {2}queue +visible 1,250, in flight 0, delayed 0; oldest waited 7 min 00 s$/m);
    assert.match(human.out, /^ {2}ETA +6 min 15 s \(1,250 messages at 200\/min\)$/m);
    assert.match(human.out, /^ {2}refresh +InProgress 40%, 1 instances to update/m);
    assert.match(human.out, /^ {2}alarms +kiln-prod-monitoring-dlq-not-empty-0a1b2c3$/m);
  });

  it("status --watch redraws until Ctrl-C and then exits 0, through a reading that failed", async () => {
    const stop = new AbortController();
    const before = stack.proxy.operations("sqs").length;
    stack.proxy.failNext("DescribeAlarms", new AwsFault("Throttling", "Rate exceeded"), 3);
    // Ctrl-C once a good reading follows the failed one (however slow the machine), or after a minute.
    const giveUp = setTimeout(() => stop.abort(), 60_000);
    const onOut = (out: string) => {
      const lines = out.split("\n").slice(1, -1); // whole lines after the first
      if (lines.some((l) => l.includes('"visible":1250'))) stop.abort();
    };
    const r = await stack.run(["status", "--watch", "--interval", "1", "--json"], { signal: stop.signal, onOut }).finally(() => clearTimeout(giveUp));
    stack.proxy.clearFaults();
    assert.equal(r.code, 0);
    const docs = r.out.trim().split("\n").map((l) => JSON.parse(l));
    assert.match(docs[0].error, /^reading the stack's alarms failed: Throttling: Rate exceeded/, "the failed reading is shown");
    assert.ok(docs.slice(1).some((d) => d.queue?.visible === 1250), "and the watch goes on");
    assert.ok(stack.proxy.operations("sqs").length > before);
  });

  it("eta: the seeds' backlog, offline, with the stack's own scaling rule", async () => {
    const calls = stack.proxy.calls.length;
    const oneOld = await stack.run(["eta", "--backlog", "256196", "--rate", "122", "--instances", "1"]);
    const threeTuned = await stack.run(["eta", "--backlog", "256196", "--rate", "200", "--instances", "3"]);
    const rule = await stack.run(["eta", "--backlog", "256196", "--rate", "200", "--json"]);
    assert.equal(stack.proxy.calls.length, calls, "given the backlog and the rate, no AWS call");
    assert.match(oneOld.out, /done in +35 h 00 min \(35\.0 h\)/);
    assert.match(threeTuned.out, /done in +7 h 07 min \(7\.1 h\)/);
    const e = rule.json();
    assert.equal(e.estimate.peakInstances, 5, "prod's rule: 3,000 a worker, at most 5");
    assert.equal(e.rule.target, 3000);
    assert.equal(Math.round(e.estimate.minutes), 256, "4 h 16 min");
    assert.match((await stack.run(["eta", "--backlog", "256196", "--rate", "200"])).out, /done in +4 h 16 min \(4\.3 h\)/);
    assert.ok(Math.abs(e.costUsd - e.estimate.instanceHours * 0.0544) < 1e-9, "t3.medium in Tokyo from kiln's table");
    assert.match(threeTuned.out, /21\.3 instance-hours of t3\.medium, \$1\.16 on demand/);
  });

  it("eta: the queue's backlog and the measured rate when not given, and --price", async () => {
    const r = await stack.run(["eta", "--price", "0.1", "--json"]);
    assert.equal(r.code, 0, r.err);
    const e = r.json();
    assert.equal(e.backlog, 1250);
    assert.equal(e.perInstance, 100, "200 a minute on 2 instances in service");
    assert.equal(e.price.usdPerHour, 0.1);
    assert.equal(e.estimate.segments[0].instances, 1, "1,250 is under prod's 3,000 per instance");
  });

  it("plan: peak, rate per instance, instance-hours and the rule at the peak, from 30 days of metrics", async () => {
    const hour = 3_600_000;
    const start = Math.floor(Date.now() / hour) * hour - 48 * hour;
    const data = [];
    for (let h = 0; h < 24; h++) {
      const t = new Date(start + h * hour + 60_000);
      const g = [{ Name: "AutoScalingGroupName", Value: stack.names.groupName }];
      data.push(
        { Namespace: "AWS/SQS", MetricName: "ApproximateNumberOfMessagesVisible", Dimensions: [{ Name: "QueueName", Value: "kiln-prod-work-5d6e7f8" }], Timestamp: t, Value: h === 5 ? 30_000 : 100 },
        { Namespace: "AWS/AutoScaling", MetricName: "GroupInServiceInstances", Dimensions: g, Timestamp: t, Value: 2 },
        { Namespace: "Kiln/Worker", MetricName: "MessagesProcessed", Dimensions: [{ Name: "Stack", Value: "prod" }], Timestamp: t, Value: 24_000 },
      );
    }
    for (const d of data) await stack.cloudwatch.send(new PutMetricDataCommand({ Namespace: d.Namespace, MetricData: [{ MetricName: d.MetricName, Dimensions: d.Dimensions, Timestamp: d.Timestamp, Value: d.Value }] }));
    const r = await stack.run(["plan", "--json"]);
    assert.equal(r.code, 0, r.err);
    const p = r.json();
    assert.equal(p.usage.peakBacklog, 30_000);
    assert.equal(p.usage.instanceHours, 48, "2 instances for 24 hours");
    // 24,000 an hour for a day, and what of the status test's last 30 minutes falls before this hour.
    assert.ok(p.usage.processed >= 24 * 24_000 && p.usage.processed <= 24 * 24_000 + 30 * 200, String(p.usage.processed));
    assert.equal(p.perInstance, p.usage.processed / (48 * 60), "processed / instance-minutes in service");
    assert.equal(p.ruleAtPeakUncapped, 10, "30,000 / 3,000");
    assert.match((await stack.run(["plan"])).out, /kiln:maxSize 5 held it to 5/);
  });

  it("says which stack is not deployed, exit 4; an AWS failure is one line naming the call, exit 1", async () => {
    const missing = await stack.run(["status", "--region", "us-west-2"]);
    assert.equal(missing.code, 4, missing.err);
    assert.match(missing.err, /^kiln: stack prod is not deployed in us-west-2: no SSM parameter \/kiln\/prod\/worker\/SQS_QUEUE_URL/);

    stack.proxy.failNext("DescribeAutoScalingGroups", new AwsFault("AccessDenied", "User: arn:aws:iam::123456789012:user/ops is not authorized to perform: autoscaling:DescribeAutoScalingGroups"));
    const denied = await stack.run(["status"]);
    assert.equal(denied.code, 1);
    assert.equal(denied.err.trim().split("\n").length, 1, denied.err);
    assert.match(denied.err, /^kiln: reading the Auto Scaling group kiln-prod-workers failed: AccessDenied: .*not authorized.*\(the credentials in use lack this permission/);

    stack.proxy.failNext("GetMetricData", "reset", Infinity);
    const reset = await stack.run(["status"]);
    stack.proxy.clearFaults();
    assert.equal(reset.code, 1, reset.out);
    assert.match(reset.err, /^kiln: reading (the workers' Kiln\/Worker metrics|the oldest message age of .*) failed/);
  });

  it("a group missing is not-found, exit 4", async () => {
    stack.proxy.serve("autoscaling", "DescribeAutoScalingGroups", () => ({ body: "<AutoScalingGroups></AutoScalingGroups>" }));
    try {
      const r = await stack.run(["status"]);
      assert.equal(r.code, 4);
      assert.match(r.err, /no Auto Scaling group kiln-prod-workers in ap-northeast-1/);
    } finally {
      stack.proxy.unserve("autoscaling", "DescribeAutoScalingGroups");
    }
  });
});
