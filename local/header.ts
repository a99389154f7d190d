import * as path from "node:path";
import type { FleetPlan } from "./plan";
import type { LocalQueues } from "./queues";
import { LiveView, seconds } from "./view";
import { failingCount } from "./workload";

/** Paths under the current directory read shorter relative to it; others stay absolute. */
function shown(p: string): string {
  const rel = path.relative(process.cwd(), p);
  return rel && !rel.startsWith("..") && !path.isAbsolute(rel) ? rel : p;
}

/** What the fleet runs with, once at start: enough to tell which stack and timings a run used. */
export function printHeader(view: LiveView, plan: FleetPlan, endpoint: string, queues: LocalQueues, bodies: string[]): void {
  const { cfg, scaling, options } = plan;
  const processor = plan.processor.demo
    ? `demo handler (${shown(plan.processor.what)})`
    : `${plan.processor.kind} ${plan.processor.kind === "handler" ? shown(plan.processor.what) : plan.processor.what}` +
      ({ handler: "", command: " (through sh -c, body on stdin; its output goes to the log file)", app: " (its output goes to the log file)" } as const)[plan.processor.kind];
  const fails = failingCount(bodies);
  // The stack's own handler, command or app is a path on an instance: say what stands in for it.
  const stackOwn = plan.processor.demo
    ? ([["workerApp", "--app"], ["workerCommand", "--command"], ["workerHandler", "--handler"]] as const).find(([k]) => cfg[k])
    : undefined;
  view.print(
    [
      `kiln local: stack ${options.stack} (${shown(plan.stackFile)}), embedded SQS at ${endpoint} (${cfg.region})`,
      `  queue ${plan.queueName}: visibility ${plan.visibilityTimeout} s, dead-letter after ${cfg.maxReceiveCount} receives`,
      `  workers ${scaling.min}–${scaling.max}, ${plan.concurrency} handler${plan.concurrency === 1 ? "" : "s"} each (${plan.concurrencyFrom}); ` +
        `the stack's rule aims at ${scaling.target} visible messages per worker ` +
        `(acceptable latency ${+scaling.acceptableLatency.toFixed(2)} s / ${scaling.avgProcessingMs} ms)`,
      `  cooldowns: scale out ${seconds(scaling.scaleOutCooldownMs)}, scale in ${seconds(scaling.scaleInCooldownMs)}; ` +
        `retry delay ${plan.retryDelay} s; crashed workers restart after ${seconds(plan.restartDelayMs)}, ` +
        `${plan.crashLimit} crashes within ${seconds(plan.crashWindowMs)} stop the fleet (stack time ×${options.speed})`,
      ...(stackOwn ? [`  the stack's kiln:${stackOwn[0]} (${cfg[stackOwn[0]]}) runs on an instance; here the demo handler stands in (${stackOwn[1]} runs yours)`] : []),
      `  ${processor}; ${bodies.length} demo message${bodies.length === 1 ? "" : "s"}` +
        (fails ? `, ${fails} asked to fail` : "") +
        (options.rate ? ` at ${options.rate}/s` : "") +
        `; worker logs in ${shown(plan.logFile)}`,
      ...(options.keepRunning
        ? [
            `  queue URL ${queues.url}`,
            `  DLQ URL   ${queues.dlqUrl}`,
            `  send your own messages with`,
            `    AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local aws sqs send-message --endpoint-url ${endpoint} --region ${cfg.region} \\`,
            `      --queue-url ${queues.url} --message-body '{"ms": 800}'`,
            `  or watch and steer it with npm run kiln -- status --watch --stack ${options.stack} (scale, pause, dlq show, logs, ...)`,
          ]
        : []),
      `  the status line's rate counts the last 20 s; the summary's throughput averages the whole run, ramp-up and drain included.`,
      `  Ctrl-C drains the workers and exits; a second Ctrl-C kills them.`,
      "",
    ].join("\n"),
  );
}
