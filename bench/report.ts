import { WORKER_NODE_FLAGS } from "../worker/contract";
import { CONTENDERS, ContenderName } from "./contenders";
import type { ContenderResult } from "./contender-process";
import { APP_IDEAL_PER_MINUTE, APP_TARGET, AppResult, IMPORT_SECONDS, WORK_MS } from "./app";
import type { RssResult } from "./rss";
import { STOP_WORKER, StopResult } from "./stops";
import type { Scenario } from "./scenarios";

/** Growth above this across the RSS run counts as not flat. */
export const RSS_GROWTH_LIMIT_PCT = 10;

export interface ScenarioOutcome {
  scenario: Scenario;
  messages: number;
  /** Untimed messages each run handles first. */
  warmup: number;
  /** The median run of each contender. */
  results: Partial<Record<ContenderName, ContenderResult>>;
  /** msg/s of every run, in the order they ran. */
  runs: Partial<Record<ContenderName, number[]>>;
  failures: Partial<Record<ContenderName, string>>;
}

export interface BenchReport {
  environment: {
    node: string;
    cpus: number;
    cpuModel: string;
    platform: string;
    fauxqs: string;
    sqsConsumer: string;
    /** 1-minute load average before the bench started: anything else running skews every number. */
    loadAtStart: number;
    /** Added to every contender's SQS request (--latency), to stand in for a real network. */
    latencyMs: number;
  };
  quick: boolean;
  scenarios: ScenarioOutcome[];
  /** The seeds-shaped Python worker as an app and as a command; a string when the run failed. */
  app?: AppResult | string;
  stops?: StopResult | string;
  rss?: RssResult;
  rssFailure?: string;
  seconds: number;
}

type Verdict = "met" | "MISSED" | "n/a" | "error";

function verdict(o: ScenarioOutcome): Verdict {
  if (!o.scenario.target) return "n/a";
  const r = o.results;
  if (!r.kiln || !r["sqs-consumer"] || !r.bare || CONTENDERS.some((c) => r[c]!.stalled)) return "error";
  return o.scenario.target.met(r as Record<ContenderName, ContenderResult>) ? "met" : "MISSED";
}

function appVerdict(app: AppResult): Verdict {
  return app.median.app >= APP_TARGET * APP_IDEAL_PER_MINUTE ? "met" : "MISSED";
}

function stopVerdict(stops: StopResult): Verdict {
  return stops.stranded === 0 && stops.rounds.every((r) => r.exitCode === 0) ? "met" : "MISSED";
}

function appLines(app: AppResult | string): string[] {
  if (typeof app === "string") return [`seeds-shaped app run FAILED: ${app}`];
  const per = (mode: "app" | "command") => app.runs.filter((r) => r.mode === mode);
  const of = (mode: "app" | "command") => per(mode).map((r) => r.perMinute.toFixed(1)).join(" / ");
  return [
    `the seeds' worker (Python, ${IMPORT_SECONDS} s of imports, ${WORK_MS} ms of CPU a message; MAX_WORKERS=1; ideal ${APP_IDEAL_PER_MINUTE}/min), median of ${per("app").length} interleaved runs:`,
    `  app mode (WORKER_APP)          ${app.median.app.toFixed(1)} messages/min = ${((app.median.app / APP_IDEAL_PER_MINUTE) * 100).toFixed(1)}% of ideal (runs ${of("app")}); target ≥ ${APP_TARGET * 100}%: ${appVerdict(app)}`,
    `  command mode (WORKER_COMMAND)  ${app.median.command.toFixed(1)} messages/min = ${((app.median.command / APP_IDEAL_PER_MINUTE) * 100).toFixed(1)}% of ideal (runs ${of("command")}): the imports paid per message`,
    `  app / command                  ${(app.median.app / app.median.command).toFixed(2)}×; the app's first message ${median(per("app").map((r) => r.startSeconds)).toFixed(1)} s after the worker started (imports, health check)`,
  ];
}

function stopLines(stops: StopResult | string): string[] {
  if (typeof stops === "string") return [`stop run FAILED: ${stops}`];
  const busy = stops.rounds.filter((r) => r.busy).length;
  const s = (ms: number) => (Number.isFinite(ms) ? `${(ms / 1000).toFixed(2)} s` : "–");
  return [
    `SIGTERM at ${stops.rounds.length} random points (${busy} busy, ${stops.rounds.length - busy} idle in a long poll), ${stops.latencyMs} ms of latency, MAX_WORKERS=${STOP_WORKER.MAX_WORKERS}, SQS_WAIT_TIME=${STOP_WORKER.SQS_WAIT_TIME}:`,
    `  messages stranded ${stops.stranded} (target 0): ${stopVerdict(stops)}; exit codes ${[...new Set(stops.rounds.map((r) => r.exitCode))].join(", ")}`,
    `  median SIGTERM → exit ${s(stops.medianExitMs.all)} (busy ${s(stops.medianExitMs.busy)}, idle ${s(stops.medianExitMs.idle)}: an idle worker waits for its open receive to return, up to SQS_WAIT_TIME, rather than strand what it brings)`,
  ];
}

function median(xs: number[]): number {
  return xs.length ? [...xs].sort((a, b) => a - b)[(xs.length - 1) >> 1] : NaN;
}

function rssVerdict(rss: RssResult): Verdict {
  if (!rss.complete) return "error";
  return rss.peakGrowthPct < RSS_GROWTH_LIMIT_PCT ? "met" : "MISSED";
}

const num = (n: number, digits = 0) => n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
const rate = (r?: ContenderResult) => (r ? num(r.messagesPerSecond, r.messagesPerSecond < 1000 ? 1 : 0) : "failed");
const ratio = (a?: ContenderResult, b?: ContenderResult) => (a && b ? `${(a.messagesPerSecond / b.messagesPerSecond).toFixed(2)}×` : "–");
const pct = (n: number) => `${n >= 0 ? "+" : ""}${n.toFixed(1)}%`;

function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i])).join(" | ").trimEnd();
  return [line(rows[0]), widths.map((w) => "-".repeat(w)).join("-|-"), ...rows.slice(1).map(line)].join("\n");
}

export function formatReport(report: BenchReport): string {
  const e = report.environment;
  const out: string[] = [];
  out.push(
    `kiln bench${report.quick ? " (--quick)" : ""}: node ${e.node}, ${e.cpus} CPUs (${e.cpuModel}), ${e.platform}; fauxqs ${e.fauxqs} in its own process; sqs-consumer ${e.sqsConsumer}`,
  );
  const counts = report.scenarios.map((o) => `${o.scenario.id} ${num(o.messages)}${o.warmup ? ` (+${num(o.warmup)} warm-up)` : ""}`);
  if (report.rss) counts.push(`rss ${num(report.rss.messages)} (+${num(report.rss.warmup)} warm-up)`);
  out.push(`messages: ${counts.join(" · ")}`);
  if (e.latencyMs) out.push(`latency: every contender request waits ${e.latencyMs} ms before it is sent (--latency), like a round trip to real SQS`);
  out.push(
    `load average at start ${e.loadAtStart.toFixed(2)}` +
      (e.loadAtStart > e.cpus / 4 ? ": OTHER WORK WAS RUNNING; expect noisier, lower numbers (CPU µs/msg below is the steadier measure)" : ""),
    "",
  );

  if (report.scenarios.length) {
    const rows = [["scenario", "kiln msg/s", "sqs-consumer msg/s", "bare loop msg/s", "kiln/sqs-consumer", "kiln/bare", "target", "met?"]];
    for (const o of report.scenarios) {
      const r = o.results;
      rows.push([
        o.scenario.title,
        rate(r.kiln),
        rate(r["sqs-consumer"]),
        rate(r.bare),
        ratio(r.kiln, r["sqs-consumer"]),
        ratio(r.kiln, r.bare),
        o.scenario.target?.text ?? "none set",
        verdict(o),
      ]);
    }
    out.push(table(rows), "");

    for (const o of report.scenarios) {
      const s = o.scenario;
      const reps = Math.max(...CONTENDERS.map((c) => o.runs[c]?.length ?? 0));
    out.push(`${s.id}: ${s.title}, ${num(o.messages)} messages after ${num(o.warmup)} untimed${reps > 1 ? `, median of ${reps} interleaved runs each` : ""}`);
      if (s.idealMessagesPerSecond && o.results.kiln) {
        const k = o.results.kiln;
        out.push(
          `  ideal ${num(s.idealMessagesPerSecond)} msg/s (${s.inFlight} / 50 ms): kiln at ${((k.messagesPerSecond / s.idealMessagesPerSecond) * 100).toFixed(1)}%; ` +
            `its handlers measured ${k.meanHandlerMs.toFixed(2)} ms mean (timer overshoot included), so ${num(s.inFlight / (k.meanHandlerMs / 1000))} msg/s was its true ceiling (${((k.messagesPerSecond * k.meanHandlerMs) / 1000 / s.inFlight * 100).toFixed(1)}% of handlers busy)`,
        );
      }
      for (const c of CONTENDERS) {
        const r = o.results[c];
        if (!r) {
          out.push(`  ${c}: FAILED: ${o.failures[c] ?? "no result"}`);
          continue;
        }
        const q = r.requests;
        const problems = [
          r.stalled ? "STALLED" : "",
          r.duplicates ? `${r.duplicates} duplicates` : "",
          r.leftInQueue ? `${r.leftInQueue} left in queue` : "",
          r.errors ? `${r.errors} errors (${r.firstErrors.join("; ")})` : "",
        ].filter(Boolean);
        const runs = o.runs[c] ?? [];
        out.push(
          `  ${c.padEnd(12)} ${runs.length > 1 ? `runs ${runs.map((x) => num(x, x < 1000 ? 1 : 0)).join(" / ")} msg/s; median ` : ""}${(r.ms / 1000).toFixed(2)} s; ${num(q.ReceiveMessageCommand ?? 0)} receives (${r.messagesPerReceive.toFixed(2)} msgs each), ` +
            `${num(q.DeleteMessageBatchCommand ?? 0)} delete batches, ${num(q.DeleteMessageCommand ?? 0)} single deletes; ${r.cpuUsPerMessage.toFixed(0)} µs CPU/msg; RSS ${r.rssMb.toFixed(0)} MiB` +
            (problems.length ? `; ${problems.join("; ")}` : ""),
        );
      }
    }
    out.push("");
    out.push("how each ran (one fresh process per contender, a fresh queue filled with the same bodies, fill not timed;");
    out.push("  the clock runs from the warm-up's last delete until the last one is acknowledged, as SQS acknowledges it to the client):");
    out.push("  kiln            worker/handler-pool.ts as the worker runs it: the workload a WORKER_HANDLER module in the handler threads");
    out.push("                  (min(in flight, CPUs) of them), each consuming with its own client (the worker's, as in production),");
    out.push("                  MAX_WORKERS = in flight, maxMessages 10, the worker's defaults");
    out.push("  sqs-consumer    batchSize 10, one instance per 10 in flight on one client (v14 has no concurrency option)");
    for (const o of report.scenarios) out.push(`  bare (${o.scenario.id})`.padEnd(18) + o.scenario.bareNote);
    out.push("  the others      the worker's SQSClient config (cacheMiddleware; keep-alive, 256 sockets), WaitTimeSeconds 20, VisibilityTimeout 300;");
    out.push(`  all             bundled by esbuild as the worker is, run by plain node with the worker's flags (${WORKER_NODE_FLAGS.join(" ")})`, "");
  }

  if (report.app) out.push(...appLines(report.app), "");
  if (report.stops) out.push(...stopLines(report.stops), "");
  if (report.rss) {
    const r = report.rss;
    const samples = r.samples.map((s) => `${s.label} ${s.rssMb.toFixed(1)}`).join(" · ");
    out.push(`RSS over ${num(r.messages)} messages: ${r.how}`);
    out.push(
      `  ${samples} MiB (start = the first ${num(r.messages / 10)} after ${num(r.warmup)} warm-up messages); ` +
        `growth ${pct(r.growthPct)}, peak ${pct(r.peakGrowthPct)}; target < ${RSS_GROWTH_LIMIT_PCT}% (peak): ${rssVerdict(r)}`,
    );
    out.push(
      `  ${r.range ? `${r.range.readings} readings between ${r.range.minMb.toFixed(1)} and ${r.range.maxMb.toFixed(1)} MiB; ` : ""}` +
        `${num(r.messagesPerSecond)} msg/s; worker exit ${r.workerExit}${r.complete ? "" : "; INCOMPLETE"}`,
    );
  } else if (report.rssFailure) {
    out.push(`RSS run FAILED: ${report.rssFailure}`);
  }
  const missed: string[] = report.scenarios.filter((o) => verdict(o) === "MISSED").map((o) => o.scenario.id);
  if (report.rss && rssVerdict(report.rss) === "MISSED") missed.push("rss");
  if (report.app && typeof report.app !== "string" && appVerdict(report.app) === "MISSED") missed.push("app");
  if (report.stops && typeof report.stops !== "string" && stopVerdict(report.stops) === "MISSED") missed.push("stops");
  out.push("", missed.length ? `TARGETS MISSED: ${missed.join(", ")}` : "every target set was met");
  out.push(`run time ${Math.floor(report.seconds / 60)} min ${Math.round(report.seconds % 60)} s`);
  return out.join("\n");
}

export function jsonReport(report: BenchReport): object {
  return {
    environment: report.environment,
    quick: report.quick,
    seconds: report.seconds,
    scenarios: report.scenarios.map((o) => ({
      id: o.scenario.id,
      title: o.scenario.title,
      inFlight: o.scenario.inFlight,
      messages: o.messages,
      warmup: o.warmup,
      idealMessagesPerSecond: o.scenario.idealMessagesPerSecond ?? null,
      bare: o.scenario.bare,
      results: o.results,
      runs: o.runs,
      failures: o.failures,
      ratios: {
        kilnToSqsConsumer: o.results.kiln && o.results["sqs-consumer"] ? o.results.kiln.messagesPerSecond / o.results["sqs-consumer"].messagesPerSecond : null,
        kilnToBare: o.results.kiln && o.results.bare ? o.results.kiln.messagesPerSecond / o.results.bare.messagesPerSecond : null,
      },
      target: o.scenario.target?.text ?? null,
      verdict: verdict(o),
    })),
    app: typeof report.app === "object" ? { ...report.app, idealPerMinute: APP_IDEAL_PER_MINUTE, targetShare: APP_TARGET, verdict: appVerdict(report.app) } : (report.app ?? null),
    stops: typeof report.stops === "object" ? { ...report.stops, verdict: stopVerdict(report.stops) } : (report.stops ?? null),
    rss: report.rss ? { ...report.rss, limitPct: RSS_GROWTH_LIMIT_PCT, verdict: rssVerdict(report.rss) } : null,
    rssFailure: report.rssFailure ?? null,
  };
}
