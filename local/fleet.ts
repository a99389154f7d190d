import * as fs from "node:fs";
import * as path from "node:path";
import { SQSClient } from "@aws-sdk/client-sqs";
import { EXIT } from "../worker/contract";
import { findLocalFleet } from "./control-state";
import { startEmbeddedSqs } from "./embedded-sqs";
import { exposeFleet } from "./fleet-controls";
import { printHeader } from "./header";
import { FleetPlan, inheritedEnv, LocalOptions, planFleet, UsageError } from "./plan";
import { createQueues, emptyDepth, expiredInFlight, QueueDepth, queueDepth, total } from "./queues";
import { RateHistory } from "./rates";
import { describeScaling, Scaler } from "./scaler";
import { FleetResult, formatSummary } from "./summary";
import { Throughput } from "./throughput";
import { FleetStatus, LiveView, seconds, TextOut } from "./view";
import { WorkerProcesses } from "./worker-processes";
import { demoBodies, failingCount, Feeder } from "./workload";

export interface FleetIo {
  out: TextOut;
  err: TextOut;
}

export interface LocalFleet {
  endpoint: string;
  queueUrl: string;
  dlqUrl: string;
  plan: FleetPlan;
  /** Ctrl-C: stop feeding, drain every worker, print the summary, stop the SQS. `hint` follows the event. */
  stop(reason?: string, hint?: string): void;
  /** A second Ctrl-C: kill the workers and stop without waiting for them. */
  force(): void;
  /** What the live view shows, as of the last queue read. */
  status(): FleetStatus;
  done: Promise<FleetResult>;
}

/** Exit code after a forced stop: 128 + SIGINT, as a shell reports a process Ctrl-C ended. */
export const EXIT_FORCED = 130;
/** SQS reads in a row that may fail before the fleet gives up on its embedded SQS. */
const TICK_FAILURE_LIMIT = 5;

export async function runLocalFleet(options: LocalOptions, io: FleetIo): Promise<FleetResult> {
  return (await startLocalFleet(options, io)).done;
}

/**
 * `npm run local`: an embedded SQS with the stack's queue and DLQ, worker processes scaled by the
 * stack's rule, a demo workload and a live view. Resolves once the fleet runs; `done` resolves with
 * the run's result after it stopped and cleaned up (SQS stopped, no worker left).
 */
export async function startLocalFleet(options: LocalOptions, io: FleetIo): Promise<LocalFleet> {
  const plan = planFleet(options);
  const { cfg, scaling } = plan;
  const undo: (() => unknown)[] = [];
  const undoAll = async () => {
    for (const step of undo.reverse()) await step();
    undo.length = 0;
  };

  const running = findLocalFleet(options.stateDir, options.stack);
  if (running) {
    throw new UsageError(
      `a local fleet of stack ${options.stack} already runs (pid ${running.pid}, SQS at ${running.endpoint}): ` +
        `stop it, or work on it with \`npm run kiln -- status --stack ${options.stack}\``,
    );
  }
  const server = await startEmbeddedSqs({ region: cfg.region, port: options.port }).catch((e: NodeJS.ErrnoException) => {
    if (e.code === "EADDRINUSE") throw new UsageError(`--port ${options.port}: something on 127.0.0.1 already listens there; choose another, or leave --port out for a free one`);
    throw e;
  });
  undo.push(() => server.stop());
  let sqs: SQSClient;
  let queues: Awaited<ReturnType<typeof createQueues>>;
  let log: fs.WriteStream;
  try {
    sqs = new SQSClient({ region: cfg.region, endpoint: server.endpoint, credentials: { accessKeyId: "local", secretAccessKey: "local" } });
    undo.push(() => sqs.destroy());
    queues = await createQueues(sqs, plan);
    fs.mkdirSync(path.dirname(plan.logFile), { recursive: true });
    log = fs.createWriteStream(plan.logFile, { flags: "w" });
    await new Promise<void>((resolve, reject) => log.once("open", () => resolve()).once("error", reject));
    undo.push(() => new Promise<void>((resolve) => log.end(resolve)));
  } catch (e) {
    await undoAll();
    throw e;
  }

  // Times in the view and the summary count from here, once the queues are ready.
  const startedAt = Date.now();
  const view = new LiveView(io.out, { plain: options.plain, plainEveryMs: options.plainEveryMs });
  const elapsed = () => Date.now() - startedAt;
  const bodies = demoBodies(options.messages, plan.failRate);
  const throughput = new Throughput(startedAt);
  const rates = new RateHistory(startedAt);
  const scaler = new Scaler(scaling, startedAt);
  const workers = new WorkerProcesses({
    env: { ...inheritedEnv(), ...plan.workerEnv(queues.url, server.endpoint) },
    restartDelayMs: plan.restartDelayMs,
    crashLimit: plan.crashLimit,
    crashWindowMs: plan.crashWindowMs,
    stopTimeoutMs: (cfg.drainTimeout + 30) * 1000,
    log: (line) => {
      if (!log.writableEnded) log.write(line + "\n");
    },
  });
  let retries = 0;
  workers.on("processed", () => {
    throughput.record();
    rates.record("processed");
  });
  workers.on("failed", () => {
    retries++;
    rates.record("failed");
  });
  workers.on("notice", (text) => view.event(elapsed(), text));
  workers.on("configError", (id, message) =>
    fail(EXIT.CONFIG_ERROR, `worker ${id} stopped with a configuration error (exit ${EXIT.CONFIG_ERROR}), which a restart cannot fix:\n  ${message.split("\n")[0]}`),
  );
  workers.on("gaveUp", (_id, message) => fail(1, `a worker keeps crashing, so the fleet stops: ${message}`));

  printHeader(view, plan, server.endpoint, queues, bodies);
  const feeder = new Feeder(sqs, queues.url, bodies, options.rate);
  feeder.done.catch((e: Error) => fail(1, `could not send the demo messages: ${e.message}`));

  let phase: "running" | "draining" | "waiting" | "done" = "running";
  let main: QueueDepth = emptyDepth();
  let dlq = 0;
  let dlqDepth: QueueDepth = emptyDepth();
  let stopReason = "";
  let exitCode = 0;
  let error: string | undefined;
  let tickFailures = 0;
  /** What `kiln plan` reads of the run so far. */
  const history = { peakBacklog: 0, workerSeconds: 0 };
  let lastTickAt = startedAt;
  let ticking = false;
  const paused: { on: boolean; desired: number; at?: number } = { on: false, desired: 0 };
  let announced = 0;
  /** Prints every scaling change not printed yet, whoever made it. */
  const announceScaling = () => {
    for (const e of scaler.events.slice(announced)) view.event(e.atMs, describeScaling(e, scaling.target));
    announced = scaler.events.length;
  };
  let resolveDone!: (r: FleetResult) => void;
  const done = new Promise<FleetResult>((resolve) => (resolveDone = resolve));

  const readQueues = async () => {
    const [m, d] = await Promise.all([queueDepth(sqs, queues.url), queueDepth(sqs, queues.dlqUrl)]);
    if (m.inFlight > 0 && workers.alive === 0) {
      // Nobody polls, so the emulator will not move these back by itself: count them as SQS would.
      const expired = Math.min(m.inFlight, await expiredInFlight(server.endpoint, plan.queueName));
      m.visible += expired;
      m.inFlight -= expired;
    }
    main = m;
    dlq = total(d);
    dlqDepth = d;
  };

  const status = (): FleetStatus => ({
    elapsedMs: elapsed(),
    queue: main,
    dlq,
    processed: throughput.total,
    perMinute: throughput.perMinute(),
    retries,
    running: workers.running,
    draining: workers.draining,
    desired: phase === "running" ? scaler.desired : 0,
    etaSeconds: throughput.etaSeconds(total(main)),
    phase: { running: "running", draining: "draining", waiting: "waiting for hidden messages", done: "stopped" }[phase],
  });

  const tick = async () => {
    if (ticking || phase === "done") return;
    ticking = true;
    try {
      await readQueues();
      tickFailures = 0;
      const now = Date.now();
      history.peakBacklog = Math.max(history.peakBacklog, total(main));
      history.workerSeconds += (workers.running * (now - lastTickAt)) / 1000;
      lastTickAt = now;
      if (phase === "running") {
        if (!paused.on) scaler.decide(main.visible, Date.now());
        announceScaling();
        workers.scaleTo(scaler.desired);
        if (!options.keepRunning && feeder.finished && total(main) === 0) beginStop("every message handled");
        else if (options.duration !== undefined && elapsed() >= options.duration * 1000) beginStop(`--duration ${options.duration} s reached`);
      }
      // finish() may have run while the queue was read.
      if (!finishing) view.update(status());
    } catch (e) {
      if (++tickFailures >= TICK_FAILURE_LIMIT) fail(1, `the embedded SQS stopped answering: ${(e as Error).message}`);
    } finally {
      ticking = false;
    }
  };
  const timer = setInterval(() => void tick(), options.tickMs);
  void tick();

  try {
    const unexpose = await exposeFleet(
      {
        plan,
        startedAt,
        scaler,
        workers,
        rates,
        paused,
        endpoint: server.endpoint,
        counts: () => ({ processed: throughput.total, failed: retries, queue: main, dlqDepth, history: { ...history, peakWorkers: workers.peak } }),
        phase: () => phase,
        changed: () => {
          announceScaling();
          workers.scaleTo(scaler.desired);
        },
      },
      queues,
    );
    undo.push(unexpose);
  } catch (e) {
    view.event(elapsed(), `kiln commands cannot reach this fleet: ${(e as Error).message}`);
  }

  let forced = false;
  let finishing: Promise<void> | undefined;

  function fail(code: number, message: string): void {
    if (error || phase === "done") return;
    error = message;
    if (phase === "running") beginStop(message.split(/[:\n]/)[0], code);
    else exitCode = code;
  }

  function beginStop(reason: string, code = 0, hint?: string): void {
    if (phase !== "running") return;
    phase = "draining";
    stopReason = reason;
    exitCode = code;
    feeder.stop();
    const n = workers.alive;
    view.event(elapsed(), (n ? `${reason}: draining ${n} worker${n === 1 ? "" : "s"}` : reason) + (hint ? ` (${hint})` : ""));
    void (async () => {
      await workers.stopAll();
      if (forced) return;
      await readQueues().catch(() => undefined);
      if (main.inFlight > 0) {
        // A message a stopped worker's abandoned long poll took, or one waiting out its retry
        // delay, is hidden until its visibility timeout ends; wait so the summary shows it as left.
        phase = "waiting";
        const waitMs = (plan.visibilityTimeout + 1) * 1000;
        view.event(elapsed(), `${main.inFlight} message(s) still hidden; waiting up to ${seconds(waitMs)} for SQS to show them again`);
        const until = Date.now() + waitMs;
        while (!forced && main.inFlight > 0 && Date.now() < until) {
          await new Promise((r) => setTimeout(r, 200));
          await readQueues().catch(() => undefined);
        }
      }
      if (!forced) await finish();
    })();
  }

  function finish(): Promise<void> {
    finishing ??= (async () => {
      clearInterval(timer);
      if (!forced) await readQueues().catch(() => undefined);
      phase = "done";
      view.update(status(), true);
      view.close();
      const result: FleetResult = {
        exitCode,
        reason: stopReason,
        error,
        stack: options.stack,
        endpoint: server.endpoint,
        queueUrl: queues.url,
        dlqUrl: queues.dlqUrl,
        durationMs: elapsed(),
        sent: feeder.sent,
        madeToFail: failingCount(bodies.slice(0, feeder.sent)),
        processed: throughput.total,
        retries,
        dlq,
        left: main,
        peakWorkers: workers.peak,
        scaling: scaler.events,
        restarts: workers.restarts,
        workerPids: workers.pids,
        logFile: plan.logFile,
      };
      view.print("\n" + formatSummary(result));
      if (error) io.err.write(`kiln local: ${error}\n`);
      await undoAll();
      resolveDone(result);
    })();
    return finishing;
  }

  return {
    endpoint: server.endpoint,
    queueUrl: queues.url,
    dlqUrl: queues.dlqUrl,
    plan,
    stop: (reason = "stopped", hint?: string) => beginStop(reason, 0, hint),
    status,
    force: () => {
      if (forced || phase === "done") return;
      forced = true;
      if (phase === "running") {
        phase = "draining";
        stopReason = "forced";
        feeder.stop();
      } else {
        stopReason += ", then forced";
      }
      exitCode = EXIT_FORCED;
      const killed = workers.killAll();
      view.event(elapsed(), `forced: killed ${killed} worker${killed === 1 ? "" : "s"}; their in-flight messages stay hidden until the visibility timeout`);
      void (async () => {
        await workers.stopAll();
        await finish();
      })();
    },
    done,
  };
}
