import * as path from "node:path";
import { durationFlag, num } from "../args";
import { AwsFleet } from "../aws/fleet";
import { queueNameOf } from "../aws/stack-resources";
import type { Command, CommandContext } from "../command";
import { CallFailed, EXIT, UsageError } from "../exit";
import { count, progressBar } from "../format";
import { Redraw } from "../io";
import { RedriveJournal, RedriveLock } from "../queue/journal";
import { cancelMoveTask, isUnsupported, latestMoveTask, MAX_MOVE_RATE, MoveTask, startMoveTask, waitForMoveTask } from "../queue/move-task";
import { LoopProgress, redriveLoop } from "../queue/redrive-loop";

/** Where the loop keeps its journal and lock: beside the local fleets' records (.kiln/redrive/). */
function loopFiles(ctx: CommandContext, dlqUrl: string) {
  const base = path.join(path.dirname(ctx.g.stateDir), "redrive", `${ctx.g.stack}-${queueNameOf(dlqUrl)}`);
  return { journal: `${base}.journal`, lock: `${base}.lock` };
}

/** Shows progress: a bar redrawn on a terminal, a line every few seconds elsewhere. */
function reporter(ctx: CommandContext) {
  const screen = new Redraw(ctx.io.out);
  let lastLine = 0;
  return (text: string, final = false) => {
    if (ctx.g.json) return;
    if (screen.tty || final || Date.now() - lastLine >= 5_000) {
      screen.show(text);
      lastLine = Date.now();
    }
    if (final) screen.keep();
  };
}

async function runLoop(ctx: CommandContext, why: string): Promise<number> {
  const fleet = ctx.fleet();
  const { url, dlqUrl } = await fleet.queues();
  const files = loopFiles(ctx, dlqUrl);
  const lock = RedriveLock.take(files.lock);
  const journal = new RedriveJournal(files.journal);
  const show = reporter(ctx);
  ctx.say(`${fleet.where}\nmoving the dead-letter queue back to ${queueNameOf(url)} by receive, send, delete (${why})` + (journal.carried ? `; ${journal.carried} sent by an earlier run are only deleted` : ""));
  let p: LoopProgress | undefined;
  try {
    p = await redriveLoop({
      sqs: fleet.sqs,
      dlqUrl,
      queueUrl: url,
      journal,
      maxRate: num(ctx.values, "max-rate", { min: 0.01, max: 100_000 }),
      visibility: durationFlag(ctx.values, "visibility", { min: 1, max: 43_200 }) ?? 60,
      signal: ctx.io.signal,
      progress: (q) => show(`  ${progressBar(q.moved + q.alreadySent, Math.max(q.total, q.moved + q.alreadySent))}`, q.done),
    });
  } finally {
    if (p?.done) journal.finish();
    else journal.close();
    lock.release();
  }
  ctx.json({ method: "loop", ...p });
  if (p.done) {
    ctx.say(`moved ${count(p.moved)} message(s) to ${queueNameOf(url)} with their bodies and attributes` + (p.alreadySent ? `; deleted ${p.alreadySent} an earlier run had moved` : "") + "; the dead-letter queue is empty");
    return EXIT.OK;
  }
  ctx.say(`stopped after moving ${count(p.moved)}: the rest is still in the dead-letter queue, nothing was lost; run dlq redrive again to go on`);
  return EXIT.INTERRUPTED;
}

function describeTask(t: MoveTask): string {
  const total = t.toMove ?? t.moved;
  return `  ${progressBar(t.moved, total)}  ${t.status}${t.failure ? `: ${t.failure}` : ""}`;
}

async function runMoveTask(ctx: CommandContext, fleet: AwsFleet): Promise<number> {
  const q = await fleet.stackQueues();
  const maxRate = num(ctx.values, "max-rate", { min: 1, max: MAX_MOVE_RATE, integer: true });
  let current: MoveTask | undefined;
  try {
    current = await latestMoveTask(fleet.sqs, q.dlqArn);
  } catch (e) {
    if (isUnsupported(e)) return runLoop(ctx, `${fleet.clients.settings.endpoint ?? "this endpoint"} has no StartMessageMoveTask`);
    throw new CallFailed(`listing message move tasks failed: ${(e as Error).message}`);
  }
  if (current?.status === "RUNNING") {
    ctx.say(`a move task is already running on ${queueNameOf(q.dlqUrl)} (SQS allows one a queue):\n${describeTask(current)}`);
    if (!ctx.values.wait) {
      ctx.json({ method: "move-task", started: false, task: current });
      ctx.say("follow it with --wait, stop it with --cancel");
      return EXIT.OK;
    }
  } else {
    const depth = (await fleet.queueStats()).dlq;
    if (depth.visible + depth.inFlight + depth.delayed === 0) {
      ctx.json({ method: "move-task", started: false, empty: true });
      ctx.say("the dead-letter queue is empty: nothing to move");
      return EXIT.OK;
    }
    const handle = await startMoveTask(fleet.sqs, q.dlqArn, q.arn, maxRate);
    ctx.say(`${fleet.where}\nstarted a message move task from ${queueNameOf(q.dlqUrl)} to ${queueNameOf(q.url)}${maxRate ? ` at ${maxRate}/s at most` : ""} (SQS keeps bodies and attributes)\n  task ${handle}`);
    if (!ctx.values.wait) {
      ctx.json({ method: "move-task", started: true, handle });
      ctx.say("it runs in SQS: follow it with --wait (or kiln status), stop it with --cancel");
      return EXIT.OK;
    }
  }
  const show = reporter(ctx);
  const last = await waitForMoveTask(fleet.sqs, q.dlqArn, ctx.io.signal, (t) => show(describeTask(t), t.status !== "RUNNING"));
  ctx.json({ method: "move-task", task: last });
  if (ctx.io.signal.aborted) {
    ctx.say("stopped waiting; the task goes on in SQS (--cancel stops it)");
    return EXIT.INTERRUPTED;
  }
  if (last?.status === "COMPLETED") return EXIT.OK;
  ctx.say(`the move task ended ${last?.status ?? "without a trace"}${last?.failure ? `: ${last.failure}` : ""}; what it had not moved is still in the dead-letter queue`);
  return EXIT.FAILED;
}

async function cancel(ctx: CommandContext): Promise<number> {
  const fleet = ctx.fleet();
  const { dlqUrl } = await fleet.queues();
  const holder = RedriveLock.holder(loopFiles(ctx, dlqUrl).lock);
  if (holder !== undefined) {
    process.kill(holder, "SIGTERM");
    ctx.json({ cancelled: "loop", pid: holder });
    ctx.say(`asked the running redrive (pid ${holder}) to stop after its current batch; nothing in flight is lost`);
    return EXIT.OK;
  }
  if (fleet instanceof AwsFleet) {
    const q = await fleet.stackQueues();
    let t: MoveTask | undefined;
    try {
      t = await latestMoveTask(fleet.sqs, q.dlqArn);
    } catch (e) {
      if (!isUnsupported(e)) throw new CallFailed(`listing message move tasks failed: ${(e as Error).message}`);
    }
    if (t?.status === "RUNNING" && t.handle) {
      const moved = await cancelMoveTask(fleet.sqs, t.handle);
      ctx.json({ cancelled: "move-task", handle: t.handle, moved });
      ctx.say(`cancelled the move task after about ${count(moved)} messages; the rest stays in the dead-letter queue`);
      return EXIT.OK;
    }
  }
  ctx.json({ cancelled: null });
  ctx.say("no redrive is running: nothing to cancel");
  return EXIT.OK;
}

export const dlqRedriveCommand: Command = {
  name: "dlq redrive",
  summary: "move the dead letters back to the queue (move task, or a loop that loses nothing)",
  help: `usage: kiln dlq redrive --stack NAME [--max-rate N] [--wait] [--loop] [--visibility 60s]
       kiln dlq redrive --stack NAME --cancel

Moves every message of the dead-letter queue back to the stack's queue, bodies and attributes as
they were. On AWS: an SQS message move task (StartMessageMoveTask to the stack's queue; --wait
follows ListMessageMoveTasks with a progress bar, --max-rate caps it, 1 to ${MAX_MOVE_RATE} a second).
Where SQS has no move tasks (the local fleet's embedded SQS, or --loop): a receive → send batch →
delete batch loop that journals what it sent (.kiln/redrive/), so that killed at any point it loses
nothing and a rerun goes on where it stopped; --visibility is how long a message being moved stays
hidden (a killed run's messages show again after it). --cancel stops a running task or loop.`,
  flags: {
    "max-rate": { type: "string" },
    wait: { type: "boolean" },
    cancel: { type: "boolean" },
    loop: { type: "boolean" },
    visibility: { type: "string" },
  },
  async run(ctx) {
    if (ctx.values.cancel) {
      if (ctx.values.wait || ctx.values.loop || ctx.values["max-rate"]) throw new UsageError("--cancel takes no other redrive flag");
      return cancel(ctx);
    }
    const fleet = ctx.fleet();
    if (fleet instanceof AwsFleet && !ctx.values.loop) return runMoveTask(ctx, fleet);
    return runLoop(ctx, fleet.kind === "local" ? "the embedded SQS has no StartMessageMoveTask" : "--loop");
  },
};
