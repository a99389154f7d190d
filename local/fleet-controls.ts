import * as fs from "node:fs";
import { ControlRequestError, LocalControls, LocalStatus, serveControl } from "./control";
import { removeLocalFleetRecord, socketPath, writeLocalFleetRecord } from "./control-state";
import { OldestAge } from "./oldest";
import type { FleetPlan } from "./plan";
import type { LocalQueues, QueueDepth } from "./queues";
import type { RateHistory } from "./rates";
import type { Scaler } from "./scaler";
import type { WorkerProcesses } from "./worker-processes";

export interface FleetInternals {
  plan: FleetPlan;
  startedAt: number;
  scaler: Scaler;
  workers: WorkerProcesses;
  rates: RateHistory;
  /** Shared with the fleet's tick, which leaves the desired count alone while paused. */
  paused: { on: boolean; desired: number; at?: number };
  endpoint: string;
  counts(): { processed: number; failed: number; queue: QueueDepth; dlqDepth: QueueDepth; history: LocalStatus["history"] };
  phase(): string;
  /** Called after an operator changed the desired count: announce it and start or stop workers. */
  changed(): void;
}

/**
 * What `npm run kiln` may do to a running local fleet, as it would to an Auto Scaling group: read
 * its status, set the desired count (the rule moves it again after a cooldown), pause (desired 0,
 * the rule suspended: workers drain, messages wait) and resume.
 */
export function fleetControls(f: FleetInternals): LocalControls {
  const oldest = new OldestAge(f.endpoint);
  const { scaling } = f.plan;
  const running = () => {
    if (f.phase() !== "running") throw new ControlRequestError(`the fleet is ${f.phase()}: it takes no more changes`);
  };
  return {
    async status(): Promise<LocalStatus> {
      const c = f.counts();
      const now = Date.now();
      return {
        stack: f.plan.options.stack,
        pid: process.pid,
        startedAt: f.startedAt,
        phase: f.phase(),
        paused: f.paused.on,
        pausedAt: f.paused.on ? f.paused.at : undefined,
        speed: f.plan.options.speed,
        queue: { ...c.queue, oldestAgeSeconds: await oldest.seconds(f.plan.queueName, now) },
        dlq: { ...c.dlqDepth, oldestAgeSeconds: await oldest.seconds(f.plan.dlqName, now) },
        processed: c.processed,
        failed: c.failed,
        rates: {
          processed5: f.rates.perMinute("processed", 5, now),
          processed15: f.rates.perMinute("processed", 15, now),
          failed15: f.rates.perMinute("failed", 15, now),
        },
        scaling: { min: scaling.min, max: scaling.max, target: scaling.target, desired: f.scaler.desired },
        workers: f.workers.list(),
        history: c.history,
      };
    },
    scale(desired) {
      running();
      if (f.paused.on) throw new ControlRequestError("the fleet is paused: resume it first (kiln resume)");
      if (desired < scaling.min || desired > scaling.max) {
        throw new ControlRequestError(`desired ${desired} is outside the fleet's ${scaling.min} to ${scaling.max} workers (--min, --max or the stack's minSize and maxSize)`);
      }
      const from = f.scaler.desired;
      f.scaler.set(desired, f.counts().queue.visible, Date.now(), "manual");
      f.changed();
      return { from, to: desired };
    },
    pause() {
      running();
      if (f.paused.on) return { already: true, desired: f.paused.desired };
      f.paused.on = true;
      f.paused.desired = f.scaler.desired;
      f.paused.at = Date.now();
      f.scaler.set(0, f.counts().queue.visible, Date.now(), "pause");
      f.changed();
      return { already: false, desired: f.paused.desired };
    },
    resume() {
      running();
      if (!f.paused.on) return { wasPaused: false, desired: f.scaler.desired };
      f.paused.on = false;
      const desired = Math.min(scaling.max, Math.max(scaling.min, f.paused.desired));
      f.scaler.set(desired, f.counts().queue.visible, Date.now(), "resume");
      f.changed();
      return { wasPaused: true, desired };
    },
  };
}

/**
 * Lets `kiln` find and steer the fleet: serves the control API on the stack's socket and writes the
 * record that names it. Resolves with what undoes both, for the fleet's cleanup.
 */
export async function exposeFleet(f: FleetInternals, queues: LocalQueues): Promise<() => Promise<void>> {
  const { options, cfg } = f.plan;
  const socket = socketPath(options.stateDir, options.stack);
  fs.mkdirSync(options.stateDir, { recursive: true, mode: 0o700 });
  const control = await serveControl(socket, fleetControls(f));
  writeLocalFleetRecord(options.stateDir, {
    stack: options.stack,
    pid: process.pid,
    startedAt: f.startedAt,
    socket,
    endpoint: f.endpoint,
    region: cfg.region,
    queueUrl: queues.url,
    dlqUrl: queues.dlqUrl,
    queueName: f.plan.queueName,
    dlqName: f.plan.dlqName,
    logFile: f.plan.logFile,
  });
  return async () => {
    removeLocalFleetRecord(options.stateDir, options.stack);
    await control.close();
  };
}
