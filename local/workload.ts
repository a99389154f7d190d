import { SendMessageBatchCommand, SQSClient } from "@aws-sdk/client-sqs";

/**
 * The demo workload: `count` JSON bodies, of which round(count × failRate) ask the demo handler to
 * fail. The failing ones are spread evenly rather than drawn at random, so a run's DLQ count is
 * known in advance and a test can assert it.
 */
export function demoBodies(count: number, failRate: number): string[] {
  return Array.from({ length: count }, (_, i) => {
    const fail = Math.floor((i + 1) * failRate + 0.5) > Math.floor(i * failRate + 0.5);
    return JSON.stringify(fail ? { demo: i + 1, fail: true } : { demo: i + 1 });
  });
}

export const failingCount = (bodies: string[]) => bodies.filter((b) => b.includes('"fail":true')).length;

/** Sends bodies to the queue, all at once or at `ratePerSecond`, until done or stopped. */
export class Feeder {
  sent = 0;
  private stopped = false;
  private wake?: () => void;
  readonly done: Promise<void>;

  constructor(
    private readonly sqs: SQSClient,
    private readonly queueUrl: string,
    private readonly bodies: string[],
    private readonly ratePerSecond: number,
  ) {
    this.done = this.run();
  }

  get finished(): boolean {
    return this.stopped || this.sent === this.bodies.length;
  }

  stop(): void {
    this.stopped = true;
    this.wake?.();
  }

  private async run(): Promise<void> {
    const startedAt = Date.now();
    while (!this.stopped && this.sent < this.bodies.length) {
      // At a rate, send what is owed by now; a batch holds at most 10.
      const owed = this.ratePerSecond > 0 ? Math.floor(((Date.now() - startedAt) / 1000) * this.ratePerSecond) + 1 : Infinity;
      const n = Math.min(10, this.bodies.length - this.sent, owed - this.sent);
      if (n <= 0) {
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, Math.max(10, 1000 / this.ratePerSecond));
          this.wake = () => (clearTimeout(t), resolve());
        });
        continue;
      }
      const chunk = this.bodies.slice(this.sent, this.sent + n);
      const out = await this.sqs.send(
        new SendMessageBatchCommand({ QueueUrl: this.queueUrl, Entries: chunk.map((b, j) => ({ Id: String(j), MessageBody: b })) }),
      );
      if (out.Failed?.length) throw new Error(`the embedded SQS refused demo messages: ${out.Failed[0].Message ?? out.Failed[0].Code}`);
      this.sent += n;
    }
  }
}
