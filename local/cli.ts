import { parseArgs } from "node:util";
import { reportConfigError } from "../infra/config-errors";
import { describeParseError } from "./flag-errors";
import { onInterrupts } from "./interrupts";
import type { LocalFleet } from "./fleet";
import { DEFAULT_OPTIONS, DEMO_FAIL_RATE, LocalOptions, MAX_MESSAGES, UsageError } from "./plan";

const USAGE = `usage: npm run local -- [flags]

Runs the stack's worker fleet on this machine: an embedded SQS on 127.0.0.1 with the stack's queue
and DLQ, worker processes (bin/kiln-worker.js run) added and removed by the stack's
backlog-per-instance rule, a demo workload and a live view. By default it exits with a summary once
every message is handled; Ctrl-C drains the workers first, a second Ctrl-C kills them. While it runs,
\`npm run kiln -- status --stack STACK\` (and the other kiln commands) work on it.

flags:
  --stack NAME              stack file Pulumi.NAME.yaml to take the settings from (default ${DEFAULT_OPTIONS.stack})
  --messages N              demo messages to send at start, up to ${MAX_MESSAGES.toLocaleString("en-US")} (default ${DEFAULT_OPTIONS.messages}; 0 needs --keep-running
                            or --duration)
  --rate N                  send them at N per second instead of all at once
  --fail-rate F             share of demo messages that ask to fail, 0 to 1 (default ${DEMO_FAIL_RATE} with the demo handler,
                            0 with --handler, --command or --app): they are retried and end in the DLQ
                            after the stack's maxReceiveCount receives
  --handler PATH            WORKER_HANDLER module to run instead of the demo handler
                            (worker/examples/demo-handler.js); the stack's own path is one on an instance
  --command CMD             WORKER_COMMAND to run once per message instead (through sh -c, body on stdin)
  --app CMD                 WORKER_APP: a long-lived HTTP app started once per handler slot, each with
                            its own PORT; every message is POSTed to it (Elastic Beanstalk's sqsd shape)
  --app-health-path PATH    WORKER_APP_HEALTH_PATH (default the stack's kiln:workerAppHealthPath)
  --app-start-timeout S     WORKER_APP_START_TIMEOUT (default the stack's kiln:workerAppStartTimeout)
  --env NAME=VALUE          extra worker environment, repeatable, e.g. --env DEMO_AVG_MS=100 (the demo
                            handler's average milliseconds, default 500); your secrets go here locally
  --concurrency N           MAX_WORKERS: handlers per worker process (default the stack's kiln:maxWorkers,
                            or vCPUs − 1 as on an instance when that is 0)
  --min N, --max N          fewest and most worker processes (default the stack's minSize and maxSize)
  --speed X                 stack seconds per local second (default ${DEFAULT_OPTIONS.speed}): the stack's cooldowns,
                            acceptable latency (so the rule's backlog target), visibility timeout,
                            kiln:retryDelay and kiln-worker.service's restart delay and crash window run
                            X times faster; handlers run in real time. --speed 1 runs the stack's timings
  --scale-out-cooldown S    local seconds between scale-outs (default kiln:scaleOutCooldown / speed)
  --scale-in-cooldown S     local seconds after any scaling before a scale-in (default kiln:scaleInCooldown / speed)
  --acceptable-latency S    local seconds, input of the rule (default kiln:acceptableLatency / speed)
  --avg-processing-ms MS    input of the rule (default kiln:avgProcessingMs)
  --port N                  the embedded SQS's port on 127.0.0.1 (default a free one)
  --keep-running            keep serving after the demo messages are handled and print the queue and
                            DLQ URLs and an aws CLI command to send your own; stop with Ctrl-C
  --duration S              drain and exit after S seconds, handled or not
  --log-file PATH           where the workers' JSON log lines go (default .kiln/local/STACK-workers.log)
  --plain                   print a status line every 2 s even on a terminal (the default when
                            stdout is not one)
  -h, --help                this text

Your own code: demo messages are JSON bodies {"demo": N}, and {"demo": N, "fail": true} for the
failing share; a handler gets the SQS message, a command the body on stdin (KILN_MESSAGE_ID and
KILN_RECEIVE_COUNT in its environment), an app a POST of the body. What they print goes to the log
file, tagged with the worker. Secrets that kiln:secretEnv holds on AWS come from --env here.
Workers log at debug (the fleet counts their "processed" lines), long-poll 1 s, and get dummy
credentials and the embedded endpoint; nothing listens beyond 127.0.0.1.
exit codes: 0 done or drained, 1 failed, 2 bad flag, 78 worker or stack configuration error,
130 forced by a second Ctrl-C`;

const FLAGS = {
  stack: { type: "string" },
  messages: { type: "string" },
  rate: { type: "string" },
  "fail-rate": { type: "string" },
  handler: { type: "string" },
  command: { type: "string" },
  app: { type: "string" },
  "app-health-path": { type: "string" },
  "app-start-timeout": { type: "string" },
  port: { type: "string" },
  env: { type: "string", multiple: true },
  concurrency: { type: "string" },
  min: { type: "string" },
  max: { type: "string" },
  speed: { type: "string" },
  "scale-out-cooldown": { type: "string" },
  "scale-in-cooldown": { type: "string" },
  "acceptable-latency": { type: "string" },
  "avg-processing-ms": { type: "string" },
  "keep-running": { type: "boolean" },
  duration: { type: "string" },
  "log-file": { type: "string" },
  plain: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

function number(flag: string, raw: string | undefined, o: { min: number; max: number; integer?: boolean; above?: boolean }): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  const kind = o.integer ? "a whole number" : "a number";
  const range = o.above ? `above ${o.min}` : `from ${o.min} to ${o.max}`;
  if (raw.trim() === "" || !Number.isFinite(n) || (o.integer && !Number.isInteger(n)) || (o.above ? n <= o.min : n < o.min) || n > o.max) {
    throw new UsageError(`--${flag} must be ${kind} ${range} (got ${JSON.stringify(raw)})`);
  }
  return n;
}

/** Turns argv into options; throws UsageError naming the flag at fault. */
export function parseLocalArgs(argv: string[]): LocalOptions | "help" {
  let values: ReturnType<typeof parseArgs<{ options: typeof FLAGS; strict: true; allowPositionals: false }>>["values"];
  try {
    values = parseArgs({ args: argv, options: FLAGS, strict: true, allowPositionals: false }).values;
  } catch (e) {
    throw new UsageError(describeParseError(e));
  }
  if (values.help) return "help";

  const env: Record<string, string> = {};
  for (const pair of values.env ?? []) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s.exec(pair);
    if (!m) throw new UsageError(`--env must be NAME=VALUE (got ${JSON.stringify(pair)})`);
    env[m[1]] = m[2];
  }
  const big = 1_000_000;
  const options: LocalOptions = {
    ...DEFAULT_OPTIONS,
    stack: values.stack ?? DEFAULT_OPTIONS.stack,
    messages: number("messages", values.messages, { min: 0, max: MAX_MESSAGES, integer: true }) ?? DEFAULT_OPTIONS.messages,
    rate: number("rate", values.rate, { min: 0, max: 10_000 }) ?? DEFAULT_OPTIONS.rate,
    failRate: number("fail-rate", values["fail-rate"], { min: 0, max: 1 }),
    handler: values.handler,
    command: values.command,
    app: values.app,
    appHealthPath: values["app-health-path"],
    appStartTimeout: number("app-start-timeout", values["app-start-timeout"], { min: 1, max: 3600, integer: true }),
    port: number("port", values.port, { min: 1, max: 65_535, integer: true }),
    env,
    concurrency: number("concurrency", values.concurrency, { min: 1, max: 10_000, integer: true }),
    minSize: number("min", values.min, { min: 0, max: 1000, integer: true }),
    maxSize: number("max", values.max, { min: 1, max: 1000, integer: true }),
    speed: number("speed", values.speed, { min: 0, max: 10_000, above: true }) ?? DEFAULT_OPTIONS.speed,
    scaleOutCooldown: number("scale-out-cooldown", values["scale-out-cooldown"], { min: 0, max: big }),
    scaleInCooldown: number("scale-in-cooldown", values["scale-in-cooldown"], { min: 0, max: big }),
    acceptableLatency: number("acceptable-latency", values["acceptable-latency"], { min: 0, max: big, above: true }),
    avgProcessingMs: number("avg-processing-ms", values["avg-processing-ms"], { min: 0, max: big, above: true }),
    keepRunning: values["keep-running"] ?? false,
    duration: number("duration", values.duration, { min: 0, max: big, above: true }),
    logFile: values["log-file"],
    plain: values.plain ?? false,
  };
  if (values.handler === "") throw new UsageError("--handler needs a path");
  if (values.command !== undefined && values.command.trim() === "") throw new UsageError("--command needs a command");
  if (values.app !== undefined && values.app.trim() === "") throw new UsageError("--app needs a command");
  if (options.messages === 0 && !options.keepRunning && options.duration === undefined) {
    throw new UsageError("--messages 0 leaves nothing to do: add --keep-running to send your own, or --duration");
  }
  return options;
}

export async function main(argv: string[]): Promise<number> {
  // The SDK's notice that it will need Node 22 from 2027, printed by this process's own SQS client
  // on Node 20: the README says it once. Other warnings still show.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
  let options: LocalOptions | "help";
  try {
    options = parseLocalArgs(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`kiln local: ${e.message}\n`);
    return 2;
  }
  if (options === "help") {
    process.stdout.write(USAGE + "\n");
    return 0;
  }

  let fleet: LocalFleet;
  try {
    // Loaded only now: the fleet pulls in the AWS SDK and Pulumi, which --help and a typo need not wait for.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { startLocalFleet } = require("./fleet") as typeof import("./fleet");
    fleet = await startLocalFleet(options, { out: process.stdout, err: process.stderr });
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`kiln local: ${e.message}\n`);
      return 2;
    }
    const code = reportConfigError("kiln local", e, (t) => void process.stderr.write(t));
    if (code !== undefined) return code;
    throw e;
  }

  onInterrupts(
    (signal) => {
      // Through the fleet's view, so a terminal's status block stays intact.
      if (signal === "SIGINT") fleet.stop("Ctrl-C", "Ctrl-C again kills them");
      else fleet.stop(signal, `another ${signal} kills them`);
    },
    () => fleet.force(),
  );
  return (await fleet.done).exitCode;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: Error) => {
      process.stderr.write(`kiln local: ${e.stack ?? e.message}\n`);
      process.exit(1);
    },
  );
}
