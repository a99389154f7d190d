import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as YAML from "yaml";
import { DEFAULT_OPTIONS, DEMO_FAIL_RATE, LocalOptions, planFleet, ROOT } from "../../local/plan";
import { readUnitTimings } from "../../local/unit-timings";
import { defaultMaxWorkers } from "../../worker/env/sizing";

const APP = "python3 worker/examples/file-processor/app.py";

describe("npm run local's plan: the stack as an instance runs it, time compressed", () => {
  const plan = (over: Partial<LocalOptions>) => planFleet({ ...DEFAULT_OPTIONS, ...over });
  let dir: string;

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "kiln-plan-"));
    const doc = YAML.parseDocument(fs.readFileSync(path.join(ROOT, "Pulumi.dev.yaml"), "utf8"));
    const config = doc.get("config") as YAML.YAMLMap;
    config.set("kiln:retryDelay", 60);
    config.set("kiln:workerAppHealthPath", "/ready");
    config.set("kiln:workerAppStartTimeout", 45);
    fs.writeFileSync(path.join(dir, "Pulumi.custom.yaml"), doc.toString());
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("asks the demo's messages to fail only when the demo handler gets them", () => {
    assert.equal(plan({}).failRate, DEMO_FAIL_RATE);
    assert.equal(plan({ command: "cat" }).failRate, 0);
    assert.equal(plan({ app: APP }).failRate, 0);
    assert.equal(plan({ handler: path.join(ROOT, "worker/examples/demo-handler.js") }).failRate, 0, "your own handler, even if it is the demo's file");
    assert.equal(plan({ command: "cat", failRate: 0.5 }).failRate, 0.5);
  });

  it("takes kiln:retryDelay, the unit's restart delay and crash window, compressed alike", () => {
    const unit = readUnitTimings();
    assert.deepEqual([unit.restartSec, unit.startLimitIntervalSec, unit.startLimitBurst], [10, 300, 5], "kiln-worker.service");
    const fast = plan({ stack: "custom", stackDir: dir });
    assert.equal(fast.retryDelay, 3, "60 s / 20");
    assert.equal(fast.workerEnv("q", "e").WORKER_RETRY_DELAY, "3");
    assert.deepEqual([fast.restartDelayMs, fast.crashWindowMs, fast.crashLimit], [500, 15_000, 5]);
    const real = plan({ stack: "custom", stackDir: dir, speed: 1 });
    assert.deepEqual([real.retryDelay, real.restartDelayMs, real.crashWindowMs], [60, 10_000, 300_000], "the unit's own 300 s window at --speed 1");
  });

  it("runs vCPUs − 1 handlers per worker as an instance would, unless the stack or --concurrency says", () => {
    assert.equal(plan({}).concurrency, defaultMaxWorkers({ vcpus: os.availableParallelism(), totalMemoryBytes: os.totalmem() }));
    assert.equal(plan({ stack: "prod" }).concurrency, 1, "prod's kiln:maxWorkers");
    assert.equal(plan({ concurrency: 3 }).concurrency, 3);
  });

  it("wires --app with the stack's health path and start timeout, the flags winning", () => {
    const env = plan({ stack: "custom", stackDir: dir, app: APP }).workerEnv("q", "e");
    assert.deepEqual([env.WORKER_APP, env.WORKER_APP_HEALTH_PATH, env.WORKER_APP_START_TIMEOUT], [APP, "/ready", "45"]);
    assert.equal(env.WORKER_HANDLER, undefined);
    const flags = plan({ stack: "custom", stackDir: dir, app: APP, appHealthPath: "/health", appStartTimeout: 5 }).workerEnv("q", "e");
    assert.deepEqual([flags.WORKER_APP_HEALTH_PATH, flags.WORKER_APP_START_TIMEOUT], ["/health", "5"]);
    assert.equal(flags.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED, "true", "the SDK's Node 20 notice, and only it, is silenced");
    assert.throws(() => plan({ app: APP, command: "cat" }), /--command and --app: give one of them, not both/);
  });
});
