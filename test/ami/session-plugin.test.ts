import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { pluginInvocation, pluginVersion, readsResponseFromEnv, RESPONSE_ENV, SessionPlugin } from "../../ami/session-plugin";

const SESSION = {
  response: { SessionId: "kiln-0123456789abcdef0", TokenValue: "secret-token", StreamUrl: "wss://ssmmessages.ap-northeast-1.amazonaws.com/v1/data-channel/kiln-0123456789abcdef0?role=publish_subscribe" },
  request: { Target: "i-0123456789abcdef0", DocumentName: "AWS-StartPortForwardingSession", Parameters: { portNumber: ["22"], localPortNumber: ["40022"] } },
  region: "ap-northeast-1",
  endpoint: "https://ssm.ap-northeast-1.amazonaws.com",
};

/** A directory first on PATH holding a session-manager-plugin made of `script` (sh). */
function onPath(script: string): { restore(): void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kiln-plugin-"));
  fs.writeFileSync(path.join(dir, "session-manager-plugin"), `#!/bin/sh\n${script}\n`, { mode: 0o755 });
  const saved = process.env.PATH;
  process.env.PATH = `${dir}${path.delimiter}${saved}`;
  return {
    restore() {
      process.env.PATH = saved;
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

describe("session-manager-plugin, run as the AWS CLI runs it", () => {
  it("passes StartSession's answer through the environment to plugins newer than 1.2.497.0, as the CLI decides", () => {
    assert.deepEqual(
      ["1.2.707.0", "1.2.497.1", "1.3", "2", "1.2.497.0", "1.2.463.0", "1.1.61.0", "1.2.497.0-beta", "", "unknown"].map((v) => [v, readsResponseFromEnv(v)]),
      [["1.2.707.0", true], ["1.2.497.1", true], ["1.3", true], ["2", true], ["1.2.497.0", false], ["1.2.463.0", false], ["1.1.61.0", false],
        ["1.2.497.0-beta", false], ["", false], ["unknown", false]],
    );
  });

  it("gives the arguments in the CLI's order, the token never on the command line of a plugin that can take it otherwise", () => {
    const modern = pluginInvocation({ ...SESSION, version: "1.2.707.0" }, { PATH: "/usr/bin" });
    assert.deepEqual(modern.args, [RESPONSE_ENV, "ap-northeast-1", "StartSession", "", JSON.stringify(SESSION.request), SESSION.endpoint]);
    assert.ok(!modern.args.join(" ").includes("secret-token"));
    assert.deepEqual(JSON.parse(modern.env[RESPONSE_ENV]!), SESSION.response);
    assert.equal(modern.env.PATH, "/usr/bin", "the rest of the environment is kept (credentials, AWS_PROFILE)");

    const legacy = pluginInvocation({ ...SESSION, version: "1.2.463.0" }, { PATH: "/usr/bin" });
    assert.deepEqual(JSON.parse(legacy.args[0]), SESSION.response);
    assert.equal(legacy.env[RESPONSE_ENV], undefined);
  });

  it("reads the installed plugin's version, and says when there is none", async () => {
    const plugin = onPath('[ "$1" = --version ] && echo " 1.2.707.0 "');
    try {
      assert.equal(await pluginVersion(), "1.2.707.0");
    } finally {
      plugin.restore();
    }
    const saved = process.env.PATH;
    process.env.PATH = "/nonexistent";
    try {
      assert.equal(await pluginVersion(), undefined);
    } finally {
      process.env.PATH = saved;
    }
  });

  it("reports a plugin that ends before it listens with its own last words", async () => {
    const plugin = onPath('echo "Starting session with SessionId: $$"; echo "Cannot perform start session: EOF"');
    try {
      const p = SessionPlugin.start({ ...SESSION, version: "1.2.707.0" });
      await assert.rejects(
        p.waitUntilListening(SESSION.response.SessionId, Date.now() + 10_000, new AbortController().signal),
        /session-manager-plugin exited with code 0 before it listened \(its last output: Starting session with SessionId: \d+ \| Cannot perform start session: EOF\)/,
      );
    } finally {
      plugin.restore();
    }
  });

  it("stops a plugin with SIGINT, and kills one that ignores it once the grace period is over", async () => {
    const stubborn = onPath(`trap '' INT; echo "Port 40022 opened for sessionId ${SESSION.response.SessionId}."; while :; do sleep 1; done`);
    try {
      const p = SessionPlugin.start({ ...SESSION, version: "1.2.707.0" });
      assert.equal(await p.waitUntilListening(SESSION.response.SessionId, Date.now() + 10_000, new AbortController().signal), 40022);
      await p.stop(300);
      assert.deepEqual(p.exit, { code: null, signal: "SIGKILL" });
    } finally {
      stubborn.restore();
    }
    const polite = onPath(
      `trap 'echo "Terminate signal received, exiting."; exit 0' INT; echo "Port 40022 opened for sessionId ${SESSION.response.SessionId}."; while :; do sleep 0.1; done`,
    );
    try {
      const p = SessionPlugin.start({ ...SESSION, version: "1.2.707.0" });
      await p.waitUntilListening(SESSION.response.SessionId, Date.now() + 10_000, new AbortController().signal);
      await p.stop(10_000);
      assert.deepEqual(p.exit, { code: 0, signal: null });
      assert.match(p.describeExit(), /Terminate signal received, exiting\./);
    } finally {
      polite.restore();
    }
  });
});
