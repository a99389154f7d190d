import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { NodeSSH } from "node-ssh";
import { NODE_PACKAGES, remotePayloadDir } from "../../ami/payload";
import { asRoot, connectBefore, exec, SshCommandError } from "../../ami/ssh";
import { StepError } from "../../ami/step";
import { stepProvision } from "../../ami/steps/provision";
import { stepUpload } from "../../ami/steps/upload";
import { BuilderHost, recordingContext, sshBakeState } from "../support/builder-host";

const ROOT = path.resolve(__dirname, "../..");

describe("ami/ssh.ts against a real sshd", function () {
  this.timeout(15 * 60_000);
  let host: BuilderHost;
  let ssh: NodeSSH;

  before(async () => {
    host = await BuilderHost.start({ user: "root", log: (l) => console.log(`      ${l}`) });
    ssh = await connectBefore(host.target(), { deadline: Date.now() + 10_000, signal: new AbortController().signal });
  });
  after(async () => {
    ssh?.dispose();
    await host?.stop();
  });

  it("returns the exit code, and every line of both streams as it comes, the unterminated last one too", async () => {
    const lines: string[] = [];
    const r = await exec(ssh, "echo one; echo two >&2; printf 'three'; exit 7", { onLine: (l, s) => lines.push(`${s}:${l}`) });
    assert.equal(r.code, 7);
    assert.deepEqual(lines.sort(), ["stderr:two", "stdout:one", "stdout:three"]);
  });

  it("runs as root with the environment intact, quotes and spaces included", async () => {
    const value = `it's "quoted" $HOME; rm -rf /nothing`;
    const r = await exec(ssh, asRoot("root", ["sh", "-c", 'id -u; printf "%s" "$KILN_VALUE"'], { KILN_VALUE: value }));
    assert.equal(r.code, 0);
    assert.equal(r.stdout, `0\n${value}`);
    assert.equal(asRoot("admin", ["true"]), "sudo -n -- true", "anyone else goes through sudo -n");
  });

  it("feeds stdin to the command", async () => {
    const r = await exec(ssh, "wc -c", { stdin: "x".repeat(100_000) });
    assert.equal(r.stdout.trim(), "100000");
  });

  it("gives up on a command at once when aborted, and the connection stays usable", async () => {
    const abort = new AbortController();
    setTimeout(() => abort.abort(new Error("interrupted")), 200);
    const t0 = Date.now();
    await assert.rejects(exec(ssh, "sleep 30", { signal: abort.signal }), /interrupted/);
    assert.ok(Date.now() - t0 < 1_500, `took ${Date.now() - t0} ms`);
    assert.equal((await exec(ssh, "true")).code, 0);
  });

  it("times a command out", async () => {
    await assert.rejects(exec(ssh, "sleep 30", { timeoutMs: 300 }), (e: unknown) => e instanceof SshCommandError && e.kind === "timeout");
  });

  it("provision stops at the first failing script, naming it, with its output streamed", async () => {
    const payload = fs.mkdtempSync(path.join(os.tmpdir(), "kiln-fake-payload-"));
    const state = sshBakeState(ROOT, host.target());
    state.connection = ssh;
    state.payloadDir = payload;
    const put = (p: string, text: string) => {
      fs.mkdirSync(path.dirname(path.join(payload, p)), { recursive: true });
      fs.writeFileSync(path.join(payload, p), text, { mode: 0o755 });
    };
    put("node/VERSION", `v0\n${NODE_PACKAGES[process.arch === "arm64" ? "arm64" : "x86_64"].platform}\n`);
    put("scripts/provision/10-fine.sh", "#!/bin/sh\n# step: do a fine thing\necho fine\n");
    put("scripts/provision/20-broken.sh", "#!/bin/sh\n# step: do a broken thing\necho boom >&2\nexit 3\n");
    put("scripts/provision/30-never.sh", "#!/bin/sh\n# step: never get here\ntouch /never\n");
    const lines: string[] = [];
    try {
      await stepUpload.run(state, recordingContext("upload", lines));
      assert.ok(fs.existsSync(host.path(`${remotePayloadDir(state.buildId)}/scripts/provision/20-broken.sh`)));
      await assert.rejects(stepProvision.run(state, recordingContext("provision", lines)), (e: unknown) => {
        assert.ok(e instanceof StepError);
        assert.equal(e.step, "provision");
        assert.match(e.message, /scripts\/provision\/20-broken\.sh \(do a broken thing\) exited 3/);
        assert.match(e.hint ?? "", /ami\/scripts\/provision\/20-broken\.sh/);
        return true;
      });
      assert.deepEqual(
        lines.filter((l) => l.startsWith("provision:") && !l.includes("done in")),
        ["provision: [1/3] do a fine thing", "provision: fine", "provision: [2/3] do a broken thing", "provision: boom"],
      );
      assert.ok(!fs.existsSync(host.path("/never")));
      // Cleanup after a failure leaves nothing of the payload on the host (an existing server keeps running).
      await stepUpload.cleanup!(state, recordingContext("upload", lines));
      assert.ok(!fs.existsSync(host.path(remotePayloadDir(state.buildId))));
    } finally {
      fs.rmSync(payload, { recursive: true, force: true });
    }
  });
});
