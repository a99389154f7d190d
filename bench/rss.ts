import * as fs from "node:fs";
import * as path from "node:path";
import { performance } from "node:perf_hooks";
import type { SQSClient } from "@aws-sdk/client-sqs";
import { startBundleWorker } from "./bundle-worker";
import { stopChild, hasExited } from "./children";
import { deleteQueue, filledQueue, remaining } from "./messages";

/**
 * Resident memory of the real worker process over a long run: the bundle as it ships, under plain
 * node, as systemd runs it on an instance. A leak per message shows here and nowhere else.
 */
export const RSS_WORKER = {
  MAX_WORKERS: "10",
  SQS_MAX_MESSAGES: "10",
  SQS_WAIT_TIME: "20",
  LOG_LEVEL: "warn",
};
export const RSS_HANDLER = path.join(__dirname, "handlers", "noop.js");
const QUARTERS = [0.25, 0.5, 0.75, 1];
/** Each mark is the median of the readings over this share of the messages before it. */
const WINDOW = 0.1;
const SAMPLE_EVERY_MS = 50;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

export interface RssSample {
  label: string;
  /** The share of the measured messages whose readings make up this mark. */
  window: string;
  rssMb: number;
}

export interface RssResult {
  how: string;
  warmup: number;
  messages: number;
  samples: RssSample[];
  /** Every reading after the warm-up. */
  range?: { minMb: number; maxMb: number; readings: number };
  /** Last sample against the first. */
  growthPct: number;
  /** Highest of the 25-100% samples against the first: what the target is judged on. */
  peakGrowthPct: number;
  messagesPerSecond: number;
  workerExit: number | string | null;
  complete: boolean;
}

function vmRssMb(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  if (!kb) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(kb[1]) / 1024;
}

/** Start and quarter marks, each the median of the readings over the WINDOW of messages before it. */
function marks(trace: { processed: number; rssMb: number }[], messages: number): RssSample[] {
  const inWindow = (from: number, to: number) => {
    const mbs = trace.filter((t) => t.processed >= from * messages && t.processed <= to * messages).map((t) => t.rssMb);
    return mbs.length ? median(mbs) : NaN;
  };
  return [
    { label: "start", window: `0-${WINDOW * 100}%`, rssMb: inWindow(0, WINDOW) },
    ...QUARTERS.map((q) => ({ label: `${q * 100}%`, window: `${(q - WINDOW) * 100}-${q * 100}%`, rssMb: inWindow(q - WINDOW, q) })),
  ];
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function runRssBench(o: {
  bundle: string;
  endpoint: string;
  sqs: SQSClient;
  messages: number;
  warmup: number;
  log(line: string): void;
}): Promise<RssResult> {
  let queueUrl: string | undefined;
  try {
    const total = o.warmup + o.messages;
    const t = performance.now();
    queueUrl = await filledQueue(o.sqs, "rss", total);
    o.log(`[rss] filled ${total.toLocaleString("en-US")} messages in ${((performance.now() - t) / 1000).toFixed(1)} s`);

    const { child: worker, output } = startBundleWorker(o.bundle, {
      AWS_ENDPOINT_URL_SQS: o.endpoint,
      SQS_QUEUE_URL: queueUrl,
      WORKER_HANDLER: RSS_HANDLER,
      ...RSS_WORKER,
    });
    const pid = worker.pid!;

    // V8's collections make RSS a saw-tooth of ±10% every few thousand messages here, so a single
    // reading says more about the GC phase than about growth: every mark is a median of readings.
    const trace: { processed: number; rssMb: number }[] = [];
    let start: { deleted: number; at: number } | undefined;
    let end: { deleted: number; at: number } | undefined;
    let nextQuarter = 0;
    let lastDeleted = -1;
    let lastProgress = performance.now();
    while (!hasExited(worker)) {
      await sleep(SAMPLE_EVERY_MS);
      const deleted = total - (await remaining(o.sqs, queueUrl));
      if (hasExited(worker)) break;
      const now = performance.now();
      if (deleted !== lastDeleted) [lastDeleted, lastProgress] = [deleted, now];
      else if (now - lastProgress > 60_000) break;
      if (deleted < o.warmup) continue;
      const rssMb = vmRssMb(pid);
      if (!start) {
        start = { deleted, at: now };
        o.log(`[rss] warmed up after ${deleted.toLocaleString("en-US")} messages: ${rssMb.toFixed(1)} MiB`);
      }
      trace.push({ processed: deleted - o.warmup, rssMb });
      for (; nextQuarter < QUARTERS.length && deleted - o.warmup >= QUARTERS[nextQuarter] * o.messages; nextQuarter++) {
        o.log(`[rss] ${QUARTERS[nextQuarter] * 100}%: ${rssMb.toFixed(1)} MiB`);
      }
      if (deleted >= total) {
        end = { deleted, at: now };
        break;
      }
    }
    const exitedEarly = hasExited(worker);
    await stopChild(worker, 65_000);
    if (exitedEarly || !end) o.log(`[rss] the worker run did not complete; its last output:\n${output()}`);

    const samples = marks(trace, o.messages);
    const first = samples[0].rssMb;
    const later = samples.slice(1).map((s) => s.rssMb);
    return {
      how:
        `kiln-worker process (esbuild bundle, plain node), MAX_WORKERS=${RSS_WORKER.MAX_WORKERS} SQS_MAX_MESSAGES=${RSS_WORKER.SQS_MAX_MESSAGES}, no-op WORKER_HANDLER; ` +
        `VmRSS from /proc/<pid>/status every ${SAMPLE_EVERY_MS} ms, each mark the median over the ${WINDOW * 100}% of messages before it`,
      warmup: o.warmup,
      messages: o.messages,
      samples,
      range: trace.length ? { minMb: Math.min(...trace.map((t) => t.rssMb)), maxMb: Math.max(...trace.map((t) => t.rssMb)), readings: trace.length } : undefined,
      growthPct: ((later.at(-1)! - first) / first) * 100,
      peakGrowthPct: ((Math.max(...later) - first) / first) * 100,
      messagesPerSecond: start && end ? ((end.deleted - start.deleted) / (end.at - start.at)) * 1000 : NaN,
      workerExit: worker.exitCode ?? worker.signalCode,
      complete: Boolean(end) && samples.every((s) => Number.isFinite(s.rssMb)),
    };
  } finally {
    if (queueUrl) await deleteQueue(o.sqs, queueUrl).catch(() => undefined);
  }
}
