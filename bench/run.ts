import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { stopChildrenOnExit } from "./children";
import { ContenderResult, runContenderProcess } from "./contender-process";
import { ContenderName, CONTENDERS } from "./contenders";
import { deleteQueue, filledQueue, sqsClient } from "./messages";
import { BenchReport, formatReport, jsonReport, ScenarioOutcome } from "./report";
import { runAppBench } from "./app";
import { withBundle } from "./bundle-worker";
import { runRssBench } from "./rss";
import { startLatencyProxy } from "./latency-proxy";
import { runStopBench } from "./stops";
import { SCENARIO_IDS, SCENARIOS, ScenarioId } from "./scenarios";
import { startSqsServerProcess } from "./sqs-server";

const RUNS = [...SCENARIO_IDS, "app", "stops", "rss"] as const;
type RunId = (typeof RUNS)[number];
/**
 * The RSS run's warm-up ends where V8 has finished sizing the worker's heaps: at 10,000 messages they
 * were still growing into their steady size for another ~20,000, so the "start" window measured the
 * sizing and a worker that allocates less early (and so grows later) looked as if it leaked.
 */
const RSS_COUNTS = { full: { messages: 100_000, warmup: 30_000 }, quick: { messages: 10_000, warmup: 2_000 } };
const APP_COUNTS = { full: { messages: { app: 60, command: 15 }, repeats: 3 }, quick: { messages: { app: 20, command: 5 }, repeats: 1 } };
const STOP_COUNTS = { full: { rounds: 20, messages: 1_500 }, quick: { rounds: 6, messages: 400 } };
/** The stop run's network: a real SQS round trip, whatever --latency says for the throughput runs. */
const STOP_LATENCY_MS = 10;

const USAGE = `usage: npm run bench -- [--quick] [--only <run>[,<run>...]] [--latency <ms>] [--json]

Throughput of kiln's consumer against sqs-consumer and a bare SDK loop on the same embedded SQS and
the same messages; the seeds' Python worker as an app and as a command per message; SIGTERMs at
random points (messages stranded, time to exit); then the kiln-worker process's resident memory
over ${RSS_COUNTS.full.messages.toLocaleString("en-US")} messages.

  --quick        fewer messages (a smoke run; numbers are noisier)
  --only <run>   run only these: ${RUNS.join(", ")} (repeat or comma-separate)
  --latency <ms> add this to every SQS request the contenders make (the emulator answers in about
                 1 ms; real SQS in 5-20 ms), to see how each holds up over a real network
  --json         print the results as JSON on stdout instead of the table
  -h, --help     this text

Progress goes to stderr. The exit code is 0 even when a target is missed: it is a benchmark.`;

const fileVersion = (pkg: string) => {
  try {
    return (JSON.parse(fs.readFileSync(path.join(__dirname, "..", "node_modules", pkg, "package.json"), "utf8")) as { version: string }).version;
  } catch {
    return "?";
  }
};

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      quick: { type: "boolean", default: false },
      only: { type: "string", multiple: true },
      json: { type: "boolean", default: false },
      latency: { type: "string", default: "0" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE + "\n");
    return 0;
  }
  const only = (values.only ?? []).flatMap((v) => v.split(",")).map((v) => v.trim()).filter(Boolean);
  const unknown = only.filter((v) => !(RUNS as readonly string[]).includes(v));
  if (unknown.length) {
    process.stderr.write(`unknown run ${unknown.join(", ")}: choose from ${RUNS.join(", ")}\n\n${USAGE}\n`);
    return 2;
  }
  if (!/^\d{1,4}$/.test(values.latency!)) {
    process.stderr.write(`--latency must be whole milliseconds from 0 to 9999 (got ${JSON.stringify(values.latency)})\n`);
    return 2;
  }
  const selected = (id: RunId) => only.length === 0 || only.includes(id);
  const size = values.quick ? "quick" : "full";
  const log = (line: string) => process.stderr.write(line + "\n");

  // Children inherit it: the SDK's Node-version notice would be repeated by every process.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
  stopChildrenOnExit();
  const began = performance.now();
  const report: BenchReport = {
    environment: {
      node: process.version,
      cpus: os.availableParallelism(),
      cpuModel: os.cpus()[0]?.model.trim() ?? "unknown",
      platform: `${os.platform()} ${os.arch()}`,
      fauxqs: fileVersion("fauxqs"),
      sqsConsumer: fileVersion("sqs-consumer"),
      loadAtStart: os.loadavg()[0],
      latencyMs: Number(values.latency),
    },
    quick: values.quick!,
    scenarios: [],
    seconds: 0,
  };

  const server = await startSqsServerProcess();
  const sqs = sqsClient(server.endpoint);
  log(`embedded SQS (pid ${server.pid}) at ${server.endpoint}`);
  // The network, for the throughput runs: a proxy in this process (not the measured one) delays
  // every request of every contender, whichever thread or client it comes from.
  const latency = Number(values.latency) > 0 ? await startLatencyProxy(server.endpoint, Number(values.latency)) : undefined;
  const contenderEndpoint = latency?.endpoint ?? server.endpoint;

  /** One contender on a fresh queue; a failure is returned as its message so the others still run. */
  const runOnce = async (bundle: string, id: ScenarioId, contender: ContenderName, messages: number, rep: string): Promise<ContenderResult | string> => {
    const scenario = SCENARIOS[id];
    const warmup = scenario.warmup[size];
    const t = performance.now();
    const queueUrl = await filledQueue(sqs, `${id}-${contender}`, warmup + messages);
    const fillS = (performance.now() - t) / 1000;
    try {
      const r = await runContenderProcess({
        contender,
        workload: scenario.workload,
        inFlight: scenario.inFlight,
        bare: scenario.bare,
        waitTimeSeconds: 20,
        endpoint: contenderEndpoint,
        queueUrl,
        messages,
        warmup,
        stallTimeoutMs: 30_000,
      }, bundle);
      log(
        `[${id} ${rep}] ${contender}: ${messages.toLocaleString("en-US")} in ${(r.ms / 1000).toFixed(2)} s = ` +
          `${r.messagesPerSecond.toFixed(1)} msg/s (fill ${fillS.toFixed(1)} s)${r.stalled ? " STALLED" : ""}`,
      );
      return r;
    } catch (e) {
      log(`[${id} ${rep}] ${contender}: FAILED: ${(e as Error).message}`);
      return (e as Error).message;
    } finally {
      await deleteQueue(sqs, queueUrl).catch(() => undefined);
    }
  };

  try {
    await withBundle(async (bundles) => {
      for (const id of SCENARIO_IDS.filter(selected) as ScenarioId[]) {
        const scenario = SCENARIOS[id];
        const outcome: ScenarioOutcome = { scenario, messages: scenario.messages[size], warmup: scenario.warmup[size], results: {}, runs: {}, failures: {} };
        report.scenarios.push(outcome);
        const done: Partial<Record<ContenderName, ContenderResult[]>> = {};
        const repeats = scenario.repeats[size];
        for (let rep = 1; rep <= repeats; rep++) {
          for (const contender of CONTENDERS) {
            const r = await runOnce(bundles.contenders, id, contender, outcome.messages, `${rep}/${repeats}`);
            if (typeof r === "string") outcome.failures[contender] = r;
            else (done[contender] ??= []).push(r);
          }
        }
        for (const contender of CONTENDERS) {
          const runs = done[contender] ?? [];
          if (!runs.length) continue;
          outcome.runs[contender] = runs.map((r) => r.messagesPerSecond);
          outcome.results[contender] = [...runs].sort((a, b) => a.messagesPerSecond - b.messagesPerSecond)[(runs.length - 1) >> 1];
        }
      }
      const common = { bundle: bundles.worker, endpoint: server.endpoint, sqs, log };
      if (selected("app")) {
        report.app = await runAppBench({ ...common, ...APP_COUNTS[size] }).catch((e: Error) => {
          log(`[app] FAILED: ${e.stack ?? e.message}`);
          return e.message;
        });
      }
      if (selected("stops")) {
        report.stops = await runStopBench({ ...common, ...STOP_COUNTS[size], latencyMs: STOP_LATENCY_MS }).catch((e: Error) => {
          log(`[stops] FAILED: ${e.stack ?? e.message}`);
          return e.message;
        });
      }
      if (selected("rss")) {
        try {
          report.rss = await runRssBench({ ...common, ...RSS_COUNTS[size] });
        } catch (e) {
          report.rssFailure = (e as Error).message;
          log(`[rss] FAILED: ${(e as Error).stack ?? (e as Error).message}`);
        }
      }
    });
  } finally {
    sqs.destroy();
    await latency?.stop();
    await server.stop();
  }
  report.seconds = (performance.now() - began) / 1000;
  process.stdout.write((values.json ? JSON.stringify(jsonReport(report), null, 2) : formatReport(report)) + "\n");
  return 0;
}

main().then(
  (code) => process.exit(code),
  (e: Error) => {
    process.stderr.write(`bench: ${e.stack ?? e.message}\n`);
    process.exit(1);
  },
);
