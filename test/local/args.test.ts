import { strict as assert } from "node:assert";
import { parseLocalArgs } from "../../local/cli";
import { DEFAULT_OPTIONS, UsageError } from "../../local/plan";

/** Options with the flags not given left out, as DEFAULT_OPTIONS leaves them. */
const given = (o: object) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));

describe("npm run local's flags", () => {
  it("defaults to the dev stack's demo", () => {
    assert.deepEqual(given(parseLocalArgs([]) as object), { ...DEFAULT_OPTIONS });
    assert.equal(parseLocalArgs(["--help"]), "help");
  });

  it("reads every flag", () => {
    const o = parseLocalArgs([
      "--stack", "prod", "--messages", "50", "--rate", "2.5", "--fail-rate", "0.1", "--handler", "h.js",
      "--env", "A=1", "--env", "B=x=y", "--concurrency", "3", "--min", "1", "--max", "4", "--speed", "60",
      "--scale-out-cooldown", "0.5", "--scale-in-cooldown", "2", "--acceptable-latency", "3", "--avg-processing-ms", "100",
      "--keep-running", "--duration", "30", "--log-file", "/tmp/w.log", "--plain", "--port", "4566",
    ]);
    assert.ok(o !== "help");
    assert.deepEqual(
      given(o),
      {
        ...DEFAULT_OPTIONS,
        stack: "prod", messages: 50, rate: 2.5, failRate: 0.1, handler: "h.js", env: { A: "1", B: "x=y" },
        concurrency: 3, minSize: 1, maxSize: 4, speed: 60, scaleOutCooldown: 0.5, scaleInCooldown: 2, acceptableLatency: 3,
        avgProcessingMs: 100, keepRunning: true, duration: 30, logFile: "/tmp/w.log", plain: true, port: 4566,
      },
    );
    const app = parseLocalArgs(["--app", "python3 app.py", "--app-health-path", "/health", "--app-start-timeout", "30"]);
    assert.ok(app !== "help");
    assert.deepEqual([app.app, app.appHealthPath, app.appStartTimeout], ["python3 app.py", "/health", 30]);
    const seeds = parseLocalArgs(["--messages", "256196"]);
    assert.ok(seeds !== "help" && seeds.messages === 256_196, "the seeds' backlog fits");
  });

  it("names the flag at fault", () => {
    const cases: [string[], RegExp][] = [
      [["--bogus"], /^unknown flag --bogus/],
      [["--messages"], /^--messages needs a value/],
      [["--messages", "ten"], /^--messages must be a whole number from 0 to 1000000 \(got "ten"\)/],
      [["--port", "70000"], /^--port must be a whole number from 1 to 65535/],
      [["--app", " "], /^--app needs a command/],
      [["--fail-rate", "2"], /^--fail-rate must be a number from 0 to 1/],
      [["--speed", "0"], /^--speed must be a number above 0/],
      [["--env", "no-equals"], /^--env must be NAME=VALUE/],
      [["--messages", "0"], /^--messages 0 leaves nothing to do/],
      [["stray"], /^unexpected argument stray/],
    ];
    for (const [argv, message] of cases) {
      assert.throws(() => parseLocalArgs(argv), (e: Error) => e instanceof UsageError && message.test(e.message), argv.join(" "));
    }
  });
});
