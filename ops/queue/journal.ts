import * as fs from "node:fs";
import * as path from "node:path";
import { isAlive } from "../../local/control-state";
import { UsageError } from "../exit";

/**
 * What a receive → send → delete redrive has sent, on disk, written and fsynced after each send
 * and before the matching delete: a run killed between the two finds its messages here next time,
 * and deletes them from the DLQ without sending them again. One line a message: its DLQ message id.
 */
export class RedriveJournal {
  private readonly sent = new Set<string>();
  private fd: number;

  constructor(readonly file: string) {
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    if (fs.existsSync(file)) {
      for (const line of fs.readFileSync(file, "utf8").split("\n")) if (line.trim()) this.sent.add(line.trim().split(" ")[0]);
    }
    this.fd = fs.openSync(file, "a", 0o600);
  }

  /** Messages an earlier run sent and did not get to delete. */
  get carried(): number {
    return this.sent.size;
  }

  has(dlqMessageId: string): boolean {
    return this.sent.has(dlqMessageId);
  }

  record(dlqMessageIds: string[]): void {
    if (!dlqMessageIds.length) return;
    fs.writeSync(this.fd, dlqMessageIds.map((id) => id + "\n").join(""));
    fs.fsyncSync(this.fd);
    for (const id of dlqMessageIds) this.sent.add(id);
  }

  close(): void {
    fs.closeSync(this.fd);
  }

  /** Once the DLQ is empty nothing in it can be sent twice: the journal has done its job. */
  finish(): void {
    this.close();
    fs.rmSync(this.file, { force: true });
  }
}

/** One redrive of a DLQ at a time: a second would receive the same messages and race the first. */
export class RedriveLock {
  private constructor(readonly file: string) {}

  static take(file: string): RedriveLock {
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        fs.writeFileSync(file, String(process.pid), { flag: "wx", mode: 0o600 });
        return new RedriveLock(file);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
        const holder = RedriveLock.holder(file);
        if (holder !== undefined) throw new UsageError(`a redrive of this dead-letter queue is already running (pid ${holder}): wait for it, or stop it with --cancel`);
        fs.rmSync(file, { force: true });
      }
    }
    throw new UsageError(`cannot take the redrive lock ${file}`);
  }

  /** The pid of a live redrive holding the lock, if any. */
  static holder(file: string): number | undefined {
    try {
      const pid = Number(fs.readFileSync(file, "utf8").trim());
      return Number.isInteger(pid) && pid > 0 && isAlive(pid) ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  release(): void {
    fs.rmSync(this.file, { force: true });
  }
}
