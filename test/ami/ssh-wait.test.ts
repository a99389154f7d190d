import { strict as assert } from "node:assert";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import type { BakeState } from "../../ami/state";
import { StepError } from "../../ami/step";
import { stepWaitForSsh } from "../../ami/steps/wait-for-ssh";
import { freePort, recordingContext, sshBakeState } from "../support/builder-host";

const ROOT = path.resolve(__dirname, "../..");
let KEY = "";

/** Runs wait-for-ssh against 127.0.0.1:port; returns how long it took and what it threw. */
async function waitFor(port: number, sshTimeout: number, signal?: AbortSignal, privateKey = KEY) {
  const state: BakeState = sshBakeState(ROOT, { host: "127.0.0.1", port, user: "ec2-user", privateKey }, { sshTimeout });
  const lines: string[] = [];
  const t0 = Date.now();
  let error: unknown;
  try {
    await stepWaitForSsh.run(state, recordingContext("wait-for-ssh", lines, signal));
  } catch (e) {
    error = e;
  } finally {
    await stepWaitForSsh.cleanup!(state, recordingContext("wait-for-ssh", lines));
  }
  return { ms: Date.now() - t0, error, lines, state };
}

describe("wait-for-ssh gives up on a wall-clock deadline", function () {
  this.timeout(30_000);

  before(() => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kiln-ssh-wait-"));
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", path.join(dir, "key")]);
    KEY = fs.readFileSync(path.join(dir, "key"), "utf8");
    fs.rmSync(dir, { recursive: true });
  });

  it("against a closed port: fails after the deadline, naming the step and host:port", async () => {
    const port = await freePort();
    const { ms, error, lines, state } = await waitFor(port, 3);
    assert.ok(error instanceof StepError, `expected a StepError, got ${error}`);
    assert.equal(error.step, "wait-for-ssh");
    assert.match(error.message, new RegExp(`127\\.0\\.0\\.1:${port}`));
    assert.match(error.message, /ECONNREFUSED/);
    assert.ok(error.hint, "a hint says what to do");
    assert.ok(ms >= 3_000 && ms < 5_000, `gave up after ${ms} ms, deadline 3 s`);
    assert.ok(lines.some((l) => l.includes("not yet: connect ECONNREFUSED")), lines.join("\n"));
    assert.equal(state.connection, undefined);
  });

  it("keeps trying until the deadline, whatever the number of attempts", async () => {
    // A refused connection fails in a millisecond: an attempt-counting wait would return at once
    // whatever the deadline. Here the time taken follows the deadline.
    const port = await freePort();
    const short = await waitFor(port, 1);
    const long = await waitFor(port, 5);
    assert.ok(short.ms >= 1_000 && short.ms < 2_500, `1 s deadline: ${short.ms} ms`);
    assert.ok(long.ms >= 5_000 && long.ms < 7_000, `5 s deadline: ${long.ms} ms`);
  });

  it("against a port that accepts but never speaks SSH: the handshake wait is cut at the deadline too", async () => {
    const sockets: net.Socket[] = [];
    const server = net.createServer((s) => sockets.push(s));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const { port } = server.address() as net.AddressInfo;
    try {
      const { ms, error } = await waitFor(port, 3);
      assert.ok(error instanceof StepError);
      assert.match(error.message, new RegExp(`127\\.0\\.0\\.1:${port}`));
      assert.match(error.message, /handshake|No response/i);
      assert.ok(ms >= 3_000 && ms < 5_000, `gave up after ${ms} ms, deadline 3 s (ssh2's own handshake timeout is 20 s)`);
    } finally {
      sockets.forEach((s) => s.destroy());
      await new Promise((r) => server.close(r));
    }
  });

  it("stops at once when the bake is interrupted", async () => {
    const port = await freePort();
    const abort = new AbortController();
    setTimeout(() => abort.abort(new StepError("interrupted", "interrupted by SIGINT")), 300);
    const { ms, error } = await waitFor(port, 60, abort.signal);
    assert.ok(error instanceof StepError);
    assert.equal(error.step, "interrupted");
    assert.ok(ms < 1_000, `took ${ms} ms after an abort at 300 ms`);
  });

  it("fails at once on a key it cannot read, instead of waiting out the deadline", async () => {
    const port = await freePort();
    const { ms, error } = await waitFor(port, 10, undefined, "-----BEGIN OPENSSH PRIVATE KEY-----\nbroken\n-----END OPENSSH PRIVATE KEY-----\n");
    assert.ok(error instanceof StepError);
    assert.match(error.message, /private key/);
    assert.ok(ms < 1_000, `took ${ms} ms`);
  });

  it("fails clearly when the state has no SSH target", async () => {
    const state = sshBakeState(ROOT, undefined);
    await assert.rejects(stepWaitForSsh.run(state, recordingContext("wait-for-ssh", [])), (e: unknown) => e instanceof StepError && e.step === "wait-for-ssh" && !!e.hint);
  });
});
