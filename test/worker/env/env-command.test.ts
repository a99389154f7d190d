import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { GetParametersByPathCommandInput, ThrottlingException } from "@aws-sdk/client-ssm";
import { EXIT, ssmPrefix } from "../../../worker/contract";
import { EnvCommandOptions, runEnvCommand } from "../../../worker/env/command";
import { Machine } from "../../../worker/env/sizing";
import { FAKE_REGION, FakeAws, awsError, networkError } from "../../support/fake-aws";
import { captureLog, virtualClock } from "./harness";
import { parseSystemdEnvFile } from "./systemd-env-file";

const PREFIX = ssmPrefix("prod");
const T3_MEDIUM: Machine = { vcpus: 2, totalMemoryBytes: 4 * 1024 ** 3 };
const throttled = () => new ThrottlingException({ message: "Rate exceeded", Message: "Rate exceeded", $metadata: { httpStatusCode: 400 } });

/** What Pulumi puts under /kiln/prod/worker/ for a stack: the contract's variables and the app's own. */
const STACK_VARS: Record<string, string> = {
  SQS_QUEUE_URL: "https://sqs.ap-northeast-1.amazonaws.com/123456789012/kiln-prod-work",
  SQS_MAX_MESSAGES: "10",
  SQS_WAIT_TIME: "20",
  SQS_VISIBILITY_TIMEOUT: "300",
  PROCESSING_TIMEOUT: "180",
  WORKER_DRAIN_TIMEOUT: "60",
  LOG_LEVEL: "info",
  KILN_STACK: "prod",
  WORKER_COMMAND: `/opt/app/venv/bin/python /opt/app/worker.py --lang "jpn+eng"`,
  PDF_DPI: "200",
};
const SECRETS: Record<string, string> = { OPENSEARCH_PASSWORD: `p@ss "w0rd" $ecret\\` };

describe("kiln-worker env (fake SSM behind the real SDK client)", () => {
  let fake: FakeAws;
  let dir: string;
  let logs: ReturnType<typeof captureLog>;
  let clock: ReturnType<typeof virtualClock>;

  beforeEach(() => {
    fake = new FakeAws({ ssmPageSize: 3 });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "kiln-env-"));
    logs = captureLog();
    clock = virtualClock();
  });
  afterEach(() => {
    fake.restore();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const envFile = () => path.join(dir, "etc/kiln/worker.env");
  const dropIn = () => path.join(dir, "etc/systemd/system/kiln-worker.service.d/50-sizing.conf");
  const run = (o: Partial<EnvCommandOptions> = {}) =>
    runEnvCommand({
      env: { KILN_SSM_PREFIX: PREFIX, AWS_REGION: FAKE_REGION },
      ssm: fake.ssm,
      envFile: envFile(),
      sizingDropIn: dropIn(),
      machine: T3_MEDIUM,
      log: logs.log,
      clock,
      ...o,
    });
  const written = () => Object.fromEntries(parseSystemdEnvFile(fs.readFileSync(envFile(), "utf8")));
  const pathCalls = () => fake.inputs<GetParametersByPathCommandInput>("GetParametersByPath");
  const deployStack = () => {
    fake.parameters.putAll(PREFIX, STACK_VARS);
    fake.parameters.putAll(PREFIX, SECRETS, "SecureString");
  };

  it("writes every parameter under the prefix, read page by page, and nothing from beside it", async () => {
    deployStack();
    fake.parameters.putAll("/kiln/prod/workers-old/", { STALE: "1" });
    fake.parameters.putAll(ssmPrefix("dev"), { SQS_QUEUE_URL: "https://dev" });

    assert.equal(await run(), EXIT.DRAINED);

    assert.deepEqual(written(), { ...STACK_VARS, ...SECRETS, MAX_WORKERS: "1", AWS_REGION: FAKE_REGION });
    const calls = pathCalls();
    assert.equal(calls.length, Math.ceil((Object.keys(STACK_VARS).length + 1) / 3), "one call per page of 3");
    assert.equal(calls[0].NextToken, undefined);
    for (const c of calls.slice(1)) assert.ok(c.NextToken, "later pages pass the previous page's token");
    for (const c of calls) assert.deepEqual([c.Path, c.Recursive, c.WithDecryption], ["/kiln/prod/worker", true, true]);
  });

  it("decrypts SecureStrings, and never logs a value", async () => {
    deployStack();
    assert.equal(await run(), EXIT.DRAINED);
    assert.equal(written().OPENSEARCH_PASSWORD, SECRETS.OPENSEARCH_PASSWORD);
    const journal = logs.raw.join("\n");
    assert.ok(!journal.includes("p@ss"), "the secret reached the log");
    assert.ok(!journal.includes("/opt/app/venv"), "a plain value reached the log");
    assert.ok(logs.at("info").some((l) => (l.variables as string[]).includes("OPENSEARCH_PASSWORD")), "names are logged");
  });

  it("writes worker.env 0600 and the sizing drop-in, leaving no temp file", async () => {
    deployStack();
    assert.equal(await run(), EXIT.DRAINED);
    assert.equal(fs.statSync(envFile()).mode & 0o777, 0o600);
    assert.deepEqual(fs.readdirSync(path.dirname(envFile())), ["worker.env"]);
    assert.deepEqual(fs.readdirSync(path.dirname(dropIn())), ["50-sizing.conf"]);
    const settings = fs.readFileSync(dropIn(), "utf8").split("\n").filter((l) => l && !l.startsWith("#"));
    assert.deepEqual(settings, ["[Service]", "MemoryHigh=1733M", "MemoryMax=2167M", "CPUQuota=150%"]);
  });

  it("sizes a 1 vCPU machine: one worker, CPUQuota=75%", async () => {
    deployStack();
    assert.equal(await run({ machine: { vcpus: 1, totalMemoryBytes: 2 * 1024 ** 3 } }), EXIT.DRAINED);
    assert.equal(written().MAX_WORKERS, "1");
    assert.match(fs.readFileSync(dropIn(), "utf8"), /\nMemoryMax=873M\nCPUQuota=75%\n/);
  });

  it("keeps the stack's MAX_WORKERS and KILN_MEMORY_MAX / KILN_CPU_QUOTA over the machine's", async () => {
    deployStack();
    fake.parameters.putAll(PREFIX, { MAX_WORKERS: "6", KILN_MEMORY_MAX: "3G", KILN_CPU_QUOTA: "190%" });
    assert.equal(await run({ machine: { vcpus: 8, totalMemoryBytes: 16 * 1024 ** 3 } }), EXIT.DRAINED);
    assert.equal(written().MAX_WORKERS, "6");
    assert.match(fs.readFileSync(dropIn(), "utf8"), /\nMemoryHigh=2457M\nMemoryMax=3G\nCPUQuota=190%\n/);
  });

  it("fails a sizing override systemd would ignore as a config error, writing nothing", async () => {
    deployStack();
    fake.parameters.putAll(PREFIX, { KILN_MEMORY_MAX: "3 gigs" });
    assert.equal(await run(), EXIT.CONFIG_ERROR);
    assert.equal(fs.existsSync(envFile()), false);
    assert.match(logs.at("error")[0].msg, /KILN_MEMORY_MAX must be/);
  });

  it("retries throttling with growing, jittered delays, then succeeds", async () => {
    deployStack();
    fake.failNext("GetParametersByPath", throttled(), 3);
    clock.random = () => 0.5;
    assert.equal(await run({ retry: { baseDelayMs: 1000, maxDelayMs: 3000 } }), EXIT.DRAINED);
    assert.deepEqual(clock.slept, [500, 1000, 1500], "half of 1 s, 2 s, then the 3 s cap");
    assert.equal(logs.at("warn").length, 3);
    assert.match(logs.at("warn")[0].error as string, /ThrottlingException: Rate exceeded/);
    assert.equal(written().SQS_QUEUE_URL, STACK_VARS.SQS_QUEUE_URL);
  });

  it("starts the read over when a later page fails, so one environment is never two versions mixed", async () => {
    deployStack();
    fake.failNext("GetParametersByPath", throttled(), 1, 2);
    assert.equal(await run(), EXIT.DRAINED);
    const calls = pathCalls();
    assert.equal(calls[3].NextToken, undefined, "the retry starts from the first page");
    assert.deepEqual(written(), { ...STACK_VARS, ...SECRETS, MAX_WORKERS: "1", AWS_REGION: FAKE_REGION });
  });

  it("gives up on a network that never answers at the deadline: EXIT.CRASHED and one clear line", async () => {
    deployStack();
    fake.failNext("GetParametersByPath", networkError("ETIMEDOUT"), Infinity);
    assert.equal(await run({ retry: { deadlineMs: 30_000 } }), EXIT.CRASHED);
    assert.ok(clock.elapsed() >= 30_000 && clock.elapsed() < 31_000, `gave up after ${clock.elapsed()} ms`);
    const errors = logs.at("error");
    assert.equal(errors.length, 1);
    assert.match(errors[0].msg, /^kiln-worker env failed: SSM GetParametersByPath \/kiln\/prod\/worker\/ failed in ap-northeast-1: ETIMEDOUT: connect ETIMEDOUT .* \(after \d+ attempts over 30\.0s\)$/);
    assert.equal(errors[0].exitCode, EXIT.CRASHED);
    assert.equal(fs.existsSync(envFile()), false);
  });

  it("gives up in real time too, with a small deadline", async () => {
    deployStack();
    fake.failNext("GetParametersByPath", throttled(), Infinity);
    const started = Date.now();
    assert.equal(await run({ clock: undefined, retry: { deadlineMs: 300, baseDelayMs: 10, maxDelayMs: 50 } }), EXIT.CRASHED);
    assert.ok(Date.now() - started < 2_000);
    assert.ok(pathCalls().length > 2, `${pathCalls().length} attempts`);
  });

  it("waits for parameters that are not there yet, then succeeds once they are", async () => {
    let attempts = 0;
    clock.sleep = async (ms) => {
      clock.slept.push(ms);
      if (++attempts === 2) deployStack();
    };
    assert.equal(await run(), EXIT.DRAINED);
    assert.equal(written().KILN_STACK, "prod");
  });

  it("exits EXIT.CONFIG_ERROR when the prefix stays empty, naming the prefix", async () => {
    fake.parameters.putAll(ssmPrefix("staging"), { SQS_QUEUE_URL: "https://staging" });
    assert.equal(await run(), EXIT.CONFIG_ERROR);
    const [line] = logs.at("error");
    assert.match(line.msg, /found no parameters under \/kiln\/prod\/worker\/ in ap-northeast-1/);
    assert.ok(pathCalls().length > 1, "an empty prefix is retried: the stack may be deploying");
  });

  it("exits EXIT.CONFIG_ERROR when KILN_SSM_PREFIX is missing or not a path, without calling SSM", async () => {
    assert.equal(await run({ env: { AWS_REGION: FAKE_REGION } }), EXIT.CONFIG_ERROR);
    assert.match(logs.at("error")[0].msg, /KILN_SSM_PREFIX is not set/);
    assert.equal(await run({ env: { KILN_SSM_PREFIX: "kiln/prod worker", AWS_REGION: FAKE_REGION } }), EXIT.CONFIG_ERROR);
    assert.match(logs.at("error")[1].msg, /KILN_SSM_PREFIX is not an SSM path/);
    assert.equal(pathCalls().length, 0);
  });

  it("exits EXIT.CONFIG_ERROR without a region when it has to make its own client", async () => {
    assert.equal(await run({ env: { KILN_SSM_PREFIX: PREFIX }, ssm: undefined }), EXIT.CONFIG_ERROR);
    assert.match(logs.at("error")[0].msg, /AWS_REGION is not set/);
  });

  it("treats a lasting AccessDenied as the stack's config (a new instance would be denied too), after retrying it", async () => {
    deployStack();
    fake.failNext("GetParametersByPath", awsError("ssm", "AccessDeniedException", "not authorized to perform ssm:GetParametersByPath"), Infinity);
    assert.equal(await run(), EXIT.CONFIG_ERROR);
    assert.ok(pathCalls().length > 1, "AccessDenied is retried: a new role's policy takes a moment");
    assert.match(logs.at("error")[0].msg, /AccessDeniedException: not authorized/);
  });

  it("does not retry a ValidationException: the request itself is wrong", async () => {
    deployStack();
    fake.failNext("GetParametersByPath", awsError("ssm", "ValidationException", "bad path"), Infinity);
    assert.equal(await run(), EXIT.CONFIG_ERROR);
    assert.equal(pathCalls().length, 1);
    assert.deepEqual(clock.slept, []);
  });

  it("leaves out parameters below the prefix that cannot be variable names, with a warning", async () => {
    deployStack();
    fake.parameters.put(`${PREFIX}nested/DEEP`, "x");
    fake.parameters.put(`${PREFIX}has-dash`, "x");
    assert.equal(await run(), EXIT.DRAINED);
    assert.equal(written().DEEP, undefined);
    assert.deepEqual(logs.at("warn")[0].skipped, [`${PREFIX}has-dash`, `${PREFIX}nested/DEEP`]);
  });
});
