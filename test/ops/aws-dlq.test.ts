import { strict as assert } from "node:assert";
import { DeleteMessageBatchCommand, Message, ReceiveMessageCommand, SendMessageBatchCommand } from "@aws-sdk/client-sqs";
import { eventually } from "../support/sqs";
import { DeployedStack, deployedStackSuite } from "./support/deployed-stack";

const LETTERS = [
  { body: '{"file":"a.pdf"}', attrs: { tenant: "t1" }, error: "OCR timed out after 120 s" },
  { body: '{"file":"b.pdf"}', attrs: { tenant: "t2" }, error: "OCR timed out after 120 s" },
  { body: "not json at all", attrs: { tenant: "t1" }, error: "Unexpected token o in JSON at position 1" },
];

describe("kiln dlq against a deployed stack (moto, move tasks faked)", function () {
  this.timeout(120_000);
  let stack!: DeployedStack;
  deployedStackSuite((s) => (stack = s));

  async function fillDlq(): Promise<string[]> {
    const out = await stack.sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: stack.dlqUrl,
        Entries: LETTERS.map((l, i) => ({
          Id: String(i),
          MessageBody: l.body,
          MessageAttributes: Object.fromEntries(Object.entries(l.attrs).map(([k, v]) => [k, { DataType: "String", StringValue: v }])),
        })),
      }),
    );
    const ids = LETTERS.map((_, i) => out.Successful!.find((s) => s.Id === String(i))!.MessageId!);
    // The workers' failure lines, shipped from two instances; an earlier failure of the first too.
    await stack.putLogLines("i-0aaa", [
      { level: "warn", msg: "message failed; it returns to the queue", messageId: ids[0], err: "connection reset" },
      { level: "info", msg: "worker started" },
    ]);
    await stack.putLogLines("i-0bbb", ids.map((id, i) => ({ level: "warn", msg: "message failed; it returns to the queue", messageId: id, err: LETTERS[i].error })));
    return ids;
  }

  /** Takes every message out of a queue, for the test to look at. */
  async function drain(url: string): Promise<Message[]> {
    const all: Message[] = [];
    for (;;) {
      const got = (await stack.sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, MessageAttributeNames: ["All"], VisibilityTimeout: 60 }))).Messages ?? [];
      if (!got.length) return all;
      all.push(...got);
      await stack.sqs.send(new DeleteMessageBatchCommand({ QueueUrl: url, Entries: got.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })) }));
    }
  }

  it("dlq show: bodies, receives, each message's last error from the logs; deletes nothing", async () => {
    const ids = await fillDlq();
    const r = await stack.run(["dlq", "show", "--json"]);
    assert.equal(r.code, 0, r.err);
    const shown = r.json();
    assert.equal(shown.shown, 3);
    const byId = new Map(shown.messages.map((m: { messageId: string }) => [m.messageId, m]));
    LETTERS.forEach((l, i) => {
      const m = byId.get(ids[i]) as { body: string; lastError: string; receives: number; attributes: Record<string, string> };
      assert.equal(m.body, l.body);
      assert.equal(m.lastError, l.error, "the newest failure line for that id, not an earlier one");
      assert.equal(m.receives, 0, "nothing received them before this look");
      assert.deepEqual(m.attributes, l.attrs);
    });

    const grouped = await stack.run(["dlq", "show", "--group-by", "error"]);
    assert.match(grouped.out, /^ +2 +OCR timed out after 120 s +/m);
    assert.match(grouped.out, /^ +1 +Unexpected token o in JSON at position 1 +/m);
    const again = await stack.run(["dlq", "show", "--json"]);
    assert.equal(again.json().messages[0].receives, 2, "the two looks before count as receives");

    const left = await drain(stack.dlqUrl);
    assert.deepEqual(left.map((m) => m.Body).sort(), LETTERS.map((l) => l.body).sort(), "every message is still in the DLQ, visible again");
  });

  it("dlq redrive --wait: a move task to the stack's queue, bodies and attributes intact, with progress", async () => {
    await fillDlq();
    const r = await stack.run(["dlq", "redrive", "--wait", "--max-rate", "100"]);
    assert.equal(r.code, 0, r.out + r.err);
    assert.match(r.out, /started a message move task from kiln-prod-work-dlq-1a2b3c4 to kiln-prod-work-5d6e7f8 at 100\/s at most/);
    assert.match(r.out, /\[#+\] 100% {2}3 \/ 3 {2}COMPLETED/);
    const start = stack.proxy.calls.find((c) => c.operation === "StartMessageMoveTask")!;
    assert.match(String(start.input.DestinationArn), /:kiln-prod-work-5d6e7f8$/, "to this stack's queue, named");
    assert.equal(start.input.MaxNumberOfMessagesPerSecond, 100);
    const moved = await drain(stack.queueUrl);
    assert.deepEqual(
      moved.map((m) => [m.Body, m.MessageAttributes?.tenant?.StringValue]).sort(),
      LETTERS.map((l) => [l.body, l.attrs.tenant]).sort(),
    );
    assert.deepEqual(await drain(stack.dlqUrl), []);
  });

  it("dlq redrive: a task already running is followed, not doubled; --cancel stops it", async () => {
    await fillDlq();
    stack.moves.hold();
    const started = await stack.run(["dlq", "redrive", "--json"]);
    assert.equal(started.json().started, true);
    const second = await stack.run(["dlq", "redrive"]);
    assert.equal(second.code, 0);
    assert.match(second.out, /a move task is already running on kiln-prod-work-dlq-1a2b3c4 \(SQS allows one a queue\)/);
    assert.equal(stack.proxy.operations().filter((o) => o === "StartMessageMoveTask").length, 2, "one from the earlier test, one here");

    const cancelled = await stack.run(["dlq", "redrive", "--cancel"]);
    assert.equal(cancelled.code, 0, cancelled.err);
    assert.match(cancelled.out, /cancelled the move task after about 0 messages/);
    assert.ok(await eventually(() => stack.moves.tasks.at(-1)!.status === "CANCELLED", 5_000));
    assert.equal((await drain(stack.dlqUrl)).length, 3, "nothing moved");
    const nothing = await stack.run(["dlq", "redrive", "--cancel"]);
    assert.match(nothing.out, /no redrive is running: nothing to cancel/);
  });

  it("dlq redrive --loop works on AWS too, and an empty DLQ is nothing to do", async () => {
    await fillDlq();
    const r = await stack.run(["dlq", "redrive", "--loop", "--json"]);
    assert.equal(r.code, 0, r.err);
    assert.deepEqual([r.json().moved, r.json().done], [3, true]);
    assert.equal((await drain(stack.queueUrl)).length, 3);
    const empty = await stack.run(["dlq", "redrive"]);
    assert.match(empty.out, /the dead-letter queue is empty: nothing to move/);
  });
});
