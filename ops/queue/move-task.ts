import { CancelMessageMoveTaskCommand, ListMessageMoveTasksCommand, ListMessageMoveTasksResultEntry, SQSClient, StartMessageMoveTaskCommand } from "@aws-sdk/client-sqs";
import { awsCall, isAwsError } from "../aws/call";
import { pause } from "../io";

/** What an SQS endpoint without message move tasks answers (fauxqs: InvalidAction). */
const UNSUPPORTED = ["InvalidAction", "UnsupportedOperation", "AWS.SimpleQueueService.UnsupportedOperation", "UnknownOperationException", "NotImplemented"];

export function isUnsupported(e: unknown): boolean {
  return isAwsError(e, ...UNSUPPORTED) || /unknown action|not implemented/i.test((e as Error)?.message ?? "");
}

/**
 * StartMessageMoveTask: "Only one active message movement task is supported per queue at any
 * given time", and "the maximum value for messages per second is 500".
 */
export const MAX_MOVE_RATE = 500;

export interface MoveTask {
  handle?: string;
  status: string;
  moved: number;
  toMove?: number;
  failure?: string;
  started?: string;
  rate?: number;
}

function view(t: ListMessageMoveTasksResultEntry): MoveTask {
  return {
    handle: t.TaskHandle,
    status: t.Status ?? "?",
    moved: t.ApproximateNumberOfMessagesMoved ?? 0,
    toMove: t.ApproximateNumberOfMessagesToMove,
    failure: t.FailureReason,
    started: t.StartedTimestamp ? new Date(t.StartedTimestamp).toISOString() : undefined,
    rate: t.MaxNumberOfMessagesPerSecond,
  };
}

/** The DLQ's most recent move task, if any. */
export async function latestMoveTask(sqs: SQSClient, dlqArn: string): Promise<MoveTask | undefined> {
  const out = await sqs.send(new ListMessageMoveTasksCommand({ SourceArn: dlqArn, MaxResults: 1 }));
  const t = out.Results?.[0];
  return t ? view(t) : undefined;
}

/** Starts moving the DLQ's messages to `destinationArn` (the stack's queue, named so they go nowhere else). */
export async function startMoveTask(sqs: SQSClient, dlqArn: string, destinationArn: string, maxRate?: number): Promise<string> {
  const out = await awsCall("starting a message move task", () =>
    sqs.send(new StartMessageMoveTaskCommand({ SourceArn: dlqArn, DestinationArn: destinationArn, MaxNumberOfMessagesPerSecond: maxRate })),
  );
  return out.TaskHandle!;
}

export async function cancelMoveTask(sqs: SQSClient, handle: string): Promise<number> {
  const out = await awsCall("cancelling the message move task", () => sqs.send(new CancelMessageMoveTaskCommand({ TaskHandle: handle })));
  return out.ApproximateNumberOfMessagesMoved ?? 0;
}

/** Polls the task until it ends (or `signal` aborts), reporting each reading. */
export async function waitForMoveTask(sqs: SQSClient, dlqArn: string, signal: AbortSignal, onProgress: (t: MoveTask) => void, everyMs = 2_000): Promise<MoveTask | undefined> {
  let last: MoveTask | undefined;
  while (!signal.aborted) {
    last = await awsCall("reading the message move task", () => latestMoveTask(sqs, dlqArn));
    if (last) onProgress(last);
    if (!last || last.status !== "RUNNING") return last;
    await pause(everyMs, signal);
  }
  return last;
}
