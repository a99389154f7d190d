import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import * as YAML from "yaml";
import { ConfigError, parseStackConfig, RawStackConfig } from "../../infra/config";
import { CONFIG_KEYS, KeySpec } from "../../infra/config-keys";
import { FakeAws, REPO, runStack, stackConfig } from "../support/pulumi-harness";

function prod(overrides: Record<string, string | undefined> = {}, secretKeys: string[] = []): RawStackConfig {
  const { values } = stackConfig("prod");
  for (const [k, v] of Object.entries(overrides)) {
    if (v === undefined) delete values[k];
    else values[k] = v;
  }
  return { values, secretKeys: new Set(secretKeys) };
}

function problemsOf(raw: RawStackConfig): string[] {
  try {
    parseStackConfig("prod", raw);
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    return e.problems;
  }
  assert.fail("the config was accepted");
}

describe("stack config", () => {
  it("parses both committed stacks into typed values", () => {
    const p = parseStackConfig("prod", prod());
    assert.equal(p.region, "ap-northeast-1");
    assert.equal(p.instanceType, "t3.medium");
    assert.deepEqual([p.minSize, p.maxSize, p.maxWorkers, p.maxReceiveCount], [1, 5, 1, 3]);
    assert.equal(p.backlogTarget, 3000);
    assert.deepEqual(p.s3Access[0], { access: "read", bucket: "cis-filesearch-storage", prefix: "uploads/" });
    assert.equal(p.env.PDF_DPI, "200", "numbers in kiln:env become the strings a process environment holds");
    const d = parseStackConfig("dev", { values: stackConfig("dev").values, secretKeys: new Set() });
    assert.deepEqual([d.minSize, d.spot, d.amiId], [0, true, ""]);
  });

  const rejected: [string, Record<string, string | undefined>, RegExp][] = [
    ["min above max", { "kiln:minSize": "6" }, /kiln:minSize \(6\) is above kiln:maxSize \(5\)/],
    ["an unknown key, with a suggestion", { "kiln:maxSzie": "4" }, /kiln:maxSzie is not a kiln setting: did you mean kiln:maxSize\?/],
    ["an unknown key without a near match", { "kiln:frobnicate": "1" }, /kiln:frobnicate is not a kiln setting: docs\/config\.md lists every key/],
    [
      "a visibility timeout not above the processing timeout",
      { "kiln:visibilityTimeout": "180" },
      /kiln:visibilityTimeout \(180\) must be above kiln:processingTimeout \(180\).*set it to 181 or more/,
    ],
    ["a malformed subnet id", { "kiln:subnetIds": '["subnet-xyz"]' }, /kiln:subnetIds\.0 must hold subnet ids such as subnet-0123456789abcdef0 \(got/],
    ["no subnet at all", { "kiln:subnetIds": "[]" }, /kiln:subnetIds must list at least one subnet id/],
    [
      "a missing kiln:subnetIds, showing the command that sets it",
      { "kiln:subnetIds": undefined },
      /kiln:subnetIds is required: .* Set it with `pulumi config set --path 'kiln:subnetIds\[0\]' subnet-0123456789abcdef0 --stack prod`/,
    ],
    [
      "a latency target that gives a backlog target below 1",
      { "kiln:acceptableLatency": "2", "kiln:avgProcessingMs": "5000" },
      /backlog target of 0\.40 messages per instance, below 1: raise kiln:acceptableLatency to at least 5 s/,
    ],
    ["a word where a number goes", { "kiln:minSize": "two" }, /kiln:minSize must be a whole number \(got "two"\)/],
    ["a batch size SQS cannot do", { "kiln:sqsMaxMessages": "11" }, /kiln:sqsMaxMessages must be a whole number from 1 to 10 \(got "11"\)/],
    ["a long poll SQS cannot do", { "kiln:sqsWaitTime": "30" }, /kiln:sqsWaitTime must be a whole number of seconds from 0 to 20/],
    ["a yes where a boolean goes", { "kiln:spot": "yes" }, /kiln:spot must be true or false/],
    ["an unknown log level", { "kiln:logLevel": "WARNING" }, /kiln:logLevel must be one of trace, debug, info, warn, error, fatal/],
    ["a malformed AMI id", { "kiln:amiId": "ami-123" }, /kiln:amiId must be an AMI id such as ami-0123456789abcdef0/],
    ["both a handler and a command", { "kiln:workerHandler": "/opt/h.js", "kiln:workerCommand": "/opt/c", "kiln:workerApp": undefined }, /kiln:workerHandler and kiln:workerCommand are both set: set exactly one/],
    ["neither a handler nor a command", { "kiln:workerCommand": undefined, "kiln:workerApp": undefined }, /none of kiln:workerHandler, kiln:workerCommand and kiln:workerApp is set/],
    ["a command and an app", { "kiln:workerCommand": "/opt/c", "kiln:workerApp": "python3 app.py" }, /kiln:workerCommand and kiln:workerApp are both set: set exactly one/],
    ["an app health path that is not a path", { "kiln:workerApp": "python3 app.py", "kiln:workerCommand": undefined, "kiln:workerAppHealthPath": "health" }, /kiln:workerAppHealthPath must be a URL path/],
    ["PORT in kiln:env, which kiln gives each app process", { "kiln:env": JSON.stringify({ PORT: "8080" }) }, /kiln:env.PORT must not be set/],
    ["an env var kiln sets itself", { "kiln:env": '{"SQS_QUEUE_URL":"x"}' }, /kiln:env\.SQS_QUEUE_URL is set by kiln itself/],
    ["an env var name a shell cannot hold", { "kiln:env": '{"PDF-DPI":"200"}' }, /kiln:env\.PDF-DPI names must be environment variable names/],
    ["an empty env value SSM refuses", { "kiln:env": '{"PDF_DPI":""}' }, /kiln:env\.PDF_DPI must not be empty/],
    ["an S3 grant with a wildcard", { "kiln:s3Access": '["read:bucket/*"]' }, /kiln:s3Access\.0 must hold grants like read:my-bucket\/uploads\//],
    ["an S3 grant with no access mode", { "kiln:s3Access": '["cis-filesearch-storage/uploads/"]' }, /kiln:s3Access\.0 must hold grants/],
    ["a missing region", { "aws:region": undefined }, /aws:region is not set: run `pulumi config set aws:region <region> --stack prod`/],
    ["a malformed region", { "aws:region": "tokyo" }, /aws:region must be an AWS region such as ap-northeast-1/],
    ["a retention CloudWatch does not offer", { "kiln:logRetentionDays": "31" }, /kiln:logRetentionDays must be one of CloudWatch's retention periods/],
    ["a map where a list goes", { "kiln:subnetIds": "subnet-0a11b22c33d44e55f" }, /kiln:subnetIds must be a YAML list/],
    ["an S3 prefix not ending in /, which would also grant its look-alikes", { "kiln:s3Access": '["read:bucket/uploads"]' }, /kiln:s3Access\.0 must hold grants .* ending in \//],
    ["an S3 prefix holding a policy variable", { "kiln:s3Access": '["read:bucket/${aws:username}/"]' }, /kiln:s3Access\.0 must hold grants/],
    ["AWS credentials in kiln:env, which would shadow the instance role", { "kiln:env": '{"AWS_ACCESS_KEY_ID":"AKIA"}' }, /kiln:env\.AWS_ACCESS_KEY_ID must not be set: it would override the instance role/],
    ["NODE_OPTIONS in kiln:env", { "kiln:env": '{"NODE_OPTIONS":"--inspect"}' }, /kiln:env\.NODE_OPTIONS must not be set/],
    ["a tag key in AWS's namespace, in any case", { "kiln:tags": '{"AWS:owner":"x"}' }, /kiln:tags\.AWS:owner tag keys must not start with aws:/],
    ["a tag kiln sets itself", { "kiln:tags": '{"ManagedBy":"terraform"}' }, /kiln:tags\.ManagedBy is a tag kiln sets itself/],
    ["more tags than AWS allows", { "kiln:tags": JSON.stringify(Object.fromEntries(Array.from({ length: 48 }, (_, i) => [`t${i}`, "x"]))) }, /kiln:tags has 48 tags: AWS allows 50 per resource/],
    ["a main-queue retention as long as the DLQ's", { "kiln:messageRetentionDays": "14" }, /kiln:messageRetentionDays must be a whole number of days \(the DLQ keeps 14\) from 1 to 13/],
    ["a drain systemd would cut short", { "kiln:drainTimeout": "120" }, /kiln:drainTimeout must be a whole number of seconds \(kiln-worker.service's TimeoutStopSec is 90\) from 1 to 80/],
    ["the same Spot instance type twice", { "kiln:spotInstanceTypes": '["t3.small","t3.small"]' }, /kiln:spotInstanceTypes must not list an instance type twice/],
    [
      "a refresh range AWS refuses to start (max more than 100 above min)",
      { "kiln:refreshMinHealthyPercentage": "90", "kiln:refreshMaxHealthyPercentage": "200" },
      /kiln:refreshMaxHealthyPercentage \(200\) is more than 100 above kiln:refreshMinHealthyPercentage \(90\): AWS refuses .* lower the maximum to 190 or raise the minimum to 100/,
    ],
    ["a max healthy percentage AWS does not take", { "kiln:refreshMaxHealthyPercentage": "250" }, /kiln:refreshMaxHealthyPercentage must be a whole number of percent from 100 to 200/],
    [
      "a scale-in budget shorter than a message may take",
      { "kiln:scaleInTimeout": "120" },
      /kiln:scaleInTimeout \(120\) is below kiln:processingTimeout \(180\): .* set it to 180 or more, or 0/,
    ],
    ["a scale-in budget past what a message can be hidden", { "kiln:scaleInTimeout": "50000" }, /kiln:scaleInTimeout must be a whole number of seconds from 0 to 43200/],
    [
      "burstable and other types in one Spot fleet (one credit setting for all)",
      { "kiln:spot": "true", "kiln:spotInstanceTypes": '["t3.medium","m5.large"]' },
      /kiln:spotInstanceTypes mixes burstable types \(t3.medium\) with others \(m5.large\): kiln:cpuCredits applies to T instances only/,
    ],
    ["a credit mode EC2 does not have", { "kiln:cpuCredits": "burst" }, /kiln:cpuCredits must be standard or unlimited \(got "burst"\)/],
    [
      "a bake root volume larger than the fleet's, which every launch would refuse",
      { "kiln:bake": '{"rootVolumeSize":40}', "kiln:rootVolumeSize": "30" },
      /kiln:bake.rootVolumeSize \(40\) is above kiln:rootVolumeSize \(30\): .* raise kiln:rootVolumeSize to 40/,
    ],
    ["an alarm address at a domain that receives no mail", { "kiln:alarmEmail": "ops@example.com" }, /kiln:alarmEmail is at a reserved example domain .* could never be confirmed/],
    ["an alarm address under .test", { "kiln:alarmEmail": "oncall@corp.test" }, /kiln:alarmEmail is at a reserved example domain/],
    ["a key kiln no longer reads", { "kiln:rootDeviceName": "/dev/xvda" }, /kiln:rootDeviceName is no longer a kiln setting: kiln reads the root device from the baked image now/],
    ["a key without its namespace", { minSize: "3" }, /minSize has no namespace: Pulumi config keys are namespace:key, e\.g\. kiln:minSize/],
    ["a mistyped bake setting, with a suggestion", { "kiln:bake": '{"subnetID":"subnet-0123456789abcdef0"}' }, /kiln:bake\.subnetID is not a setting of kiln:bake: did you mean subnetId\? use instanceType, subnetId/],
    ["a queue sender that is none of the kinds", { "kiln:queueSenders": '["arn:aws:lambda:ap-northeast-1:123456789012:function:f"]' }, /kiln:queueSenders\.0 must hold an account id, an IAM role or user ARN, or an S3 bucket, EventBridge rule or SNS topic ARN/],
  ];

  for (const [what, overrides, message] of rejected) {
    it(`rejects ${what}, naming the key`, () => {
      const problems = problemsOf(prod(overrides));
      assert.ok(problems.some((p) => message.test(p)), `expected ${message} in:\n${problems.join("\n")}`);
    });
  }

  it("never echoes a secret's value, even when rejecting it", () => {
    const problems = problemsOf(prod({ "kiln:secretEnv": '{"OPENSEARCH_PASSWORD":""}' }, ["kiln:secretEnv"]));
    const joined = problems.join("\n");
    assert.match(joined, /kiln:secretEnv\.OPENSEARCH_PASSWORD must not be empty .*\(got a secret value\)/);
    assert.doesNotMatch(joined, /OPENSEARCH_PASSWORD":/);
  });

  it("rejects a stack name that cannot name AWS resources", () => {
    assert.throws(() => parseStackConfig("prod.eu", prod()), /the stack name "prod\.eu" cannot name AWS resources: use 1 to 40 letters, digits, - or _/);
  });

  it("reports every problem at once", () => {
    const problems = problemsOf(prod({ "kiln:minSize": "x", "kiln:sqsWaitTime": "99", "kiln:typo": "1" }));
    assert.equal(problems.length, 3);
  });

  it("reports the checks across keys in the same pass as each key's own problems", () => {
    const problems = problemsOf(prod({ "kiln:minSize": "x", "kiln:visibilityTimeout": "100", "kiln:maxSzie": "4" }));
    assert.deepEqual(
      problems.map((p) => p.split(" ").slice(0, 2).join(" ")),
      ["kiln:maxSzie is", "kiln:minSize must", "kiln:visibilityTimeout (100)"],
      problems.join("\n"),
    );
  });

  it("lists every kiln:bake problem on its own line, showing only the offending value, never the whole map", () => {
    const bake = { keep: 0, sshCidr: "office", subnetId: "subnet-0123456789abcdef0", sshUsr: "admin", tags: { Team: "ocr" } };
    const problems = problemsOf(prod({ "kiln:bake": JSON.stringify(bake) }));
    assert.deepEqual(problems.map((p) => p.split(" ")[0]).sort(), ["kiln:bake.keep", "kiln:bake.sshCidr", "kiln:bake.sshUsr"]);
    assert.ok(problems.some((p) => /^kiln:bake\.keep must keep at least 1 image \(got "0"\)$/.test(p)), problems.join("\n"));
    assert.ok(problems.some((p) => /^kiln:bake\.sshCidr must be an IPv4 CIDR .*\(got "office"\)$/.test(p)), problems.join("\n"));
    assert.ok(problems.some((p) => /^kiln:bake\.sshUsr is not a setting of kiln:bake: did you mean sshUser\?/.test(p)), problems.join("\n"));
    for (const p of problems) assert.doesNotMatch(p, /subnet-0123456789abcdef0|\\"|\{"/, "no map dumped as escaped JSON");
  });

  it("insists that kiln:secretEnv values were set with --secret", () => {
    const plain = prod({ "kiln:secretEnv": '{"OPENSEARCH_PASSWORD":"hunter2"}' });
    assert.ok(
      problemsOf(plain).some((p) =>
        p.startsWith("kiln:secretEnv.OPENSEARCH_PASSWORD is plaintext: set it with `pulumi config set --secret --path 'kiln:secretEnv.OPENSEARCH_PASSWORD' ... --stack prod`"),
      ),
    );
    const secret = prod({ "kiln:secretEnv": '{"OPENSEARCH_PASSWORD":"hunter2"}' }, ["kiln:secretEnv"]);
    assert.equal(parseStackConfig("prod", secret).secretEnv.OPENSEARCH_PASSWORD, "hunter2");
  });

  it("refuses secrets anywhere but kiln:secretEnv, where they would reach tags or user data", () => {
    assert.ok(problemsOf(prod({}, ["kiln:env"])).some((p) => /kiln:env holds a secret value: secrets belong in kiln:secretEnv/.test(p)));
    assert.ok(problemsOf(prod({}, ["kiln:alarmEmail"])).some((p) => /kiln:alarmEmail is a secret, but only kiln:secretEnv/.test(p)));
  });

  it("refuses a name in both kiln:env and kiln:secretEnv", () => {
    const raw = prod({ "kiln:secretEnv": '{"PDF_DPI":"1"}' }, ["kiln:secretEnv"]);
    assert.ok(problemsOf(raw).some((p) => /kiln:env\.PDF_DPI is also in kiln:secretEnv/.test(p)));
  });

  describe("in the Pulumi program", () => {
    it("fails before declaring any resource, and creates nothing", async () => {
      const aws = new FakeAws();
      const cfg = stackConfig("prod");
      cfg.values["kiln:minSize"] = "9";
      await assert.rejects(runStack("prod", cfg, aws), /kiln:minSize \(9\) is above kiln:maxSize \(5\)/);
      assert.deepEqual(aws.created.filter((r) => r.type.startsWith("aws:")), []);
    });

    it("tells the user to bake an AMI first when kiln:amiId is missing", async () => {
      const aws = new FakeAws();
      await assert.rejects(runStack("dev", stackConfig("dev"), aws), /kiln:amiId is not set: bake the worker image first with `npm run bake-ami -- --stack dev`/);
      assert.deepEqual(aws.created.filter((r) => r.type.startsWith("aws:")), []);
    });

    it("names the one plaintext value beside a secret one, from the stack file, as Pulumi passes both decrypted", async () => {
      // The CLI marks kiln:secretEnv secret as a whole and hands the program both values in clear;
      // only the stack file in the project directory says which one was never encrypted.
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kiln-program-"));
      const text = fs.readFileSync(path.join(REPO, "Pulumi.prod.yaml"), "utf8") +
        "  kiln:secretEnv:\n    OPENSEARCH_PASSWORD:\n      secure: v1:abcdefabcdef\n    API_TOKEN: plain-token\n";
      fs.writeFileSync(path.join(dir, "Pulumi.prod.yaml"), text);
      const cfg = stackConfig("prod");
      cfg.values["kiln:secretEnv"] = JSON.stringify({ OPENSEARCH_PASSWORD: "decrypted", API_TOKEN: "plain-token" });
      cfg.secretKeys.push("kiln:secretEnv");
      const cwd = process.cwd();
      process.chdir(dir);
      try {
        const aws = new FakeAws();
        await assert.rejects(runStack("prod", cfg, aws), (e: Error) => {
          assert.ok(pulumi.RunError.isInstance(e), "a RunError: Pulumi prints its message without a stack trace");
          assert.match(e.message, /kiln:secretEnv\.API_TOKEN is plaintext: set it with `pulumi config set --secret --path 'kiln:secretEnv\.API_TOKEN' \.\.\. --stack prod`/);
          assert.doesNotMatch(e.message, /OPENSEARCH_PASSWORD/);
          assert.doesNotMatch(e.message, /plain-token|decrypted/, "no value echoed");
          return true;
        });
        assert.deepEqual(aws.created.filter((r) => r.type.startsWith("aws:")), []);
      } finally {
        process.chdir(cwd);
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  describe("declarations", () => {
    const project = YAML.parse(fs.readFileSync(path.join(REPO, "Pulumi.yaml"), "utf8"));

    it("Pulumi.yaml declares every key Pulumi's schema can type, with kiln's own type, default and description", () => {
      const expected: Record<string, unknown> = {};
      for (const [key, spec] of Object.entries(CONFIG_KEYS) as [string, KeySpec][]) {
        if (spec.type === "object") continue;
        expected[key] = {
          type: spec.type,
          ...(spec.type === "array" ? { items: { type: "string" } } : {}),
          description: spec.description,
          ...(spec.default !== undefined ? { default: spec.default } : {}),
        };
      }
      assert.deepEqual(project.config, expected);
    });

    it("docs/config.md documents every key", () => {
      const reference = fs.readFileSync(path.join(REPO, "docs", "config.md"), "utf8");
      for (const key of Object.keys(CONFIG_KEYS)) assert.match(reference, new RegExp(`\\| \`kiln:${key}\` \\|`), `kiln:${key} is documented`);
    });

    it("the committed stack files hold no secret values", () => {
      for (const stack of ["prod", "dev"]) assert.deepEqual(stackConfig(stack).secretKeys, []);
    });
  });
});
