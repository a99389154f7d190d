import { strict as assert } from "node:assert";
import * as path from "node:path";
import { defaultCacheDir, preparePayload } from "../../ami/payload";
import { selfCheckEnvironment } from "../../ami/self-check-env";
import type { BakeState } from "../../ami/state";
import { StepError } from "../../ami/step";
import { stepProvision } from "../../ami/steps/provision";
import { stepUpload } from "../../ami/steps/upload";
import { stepValidate } from "../../ami/steps/validate";
import { stepWaitForSsh } from "../../ami/steps/wait-for-ssh";
import { parseStackConfig } from "../../infra/config";
import { readStackFile } from "../../infra/stack-file";
import { EXIT, INSTALL } from "../../worker/contract";
import { BuilderHost, demoWorkerEnv, recordingContext, sshBakeState } from "../support/builder-host";
import { REPO } from "../support/pulumi-harness";

/**
 * validate runs the stack's own worker on the provisioned builder: a handler, a command or an app
 * that is not in the image fails the bake there, not the fleet's first boot.
 */
describe("validate: the stack's own worker, checked on the builder", function () {
  this.timeout(10 * 60_000);
  let host: BuilderHost;
  let state: BakeState;
  let lines: string[] = [];

  before(async () => {
    host = await BuilderHost.start({ user: "admin" });
    state = sshBakeState(REPO, host.target(), { stack: "prod", region: "ap-northeast-1", appDir: path.join(REPO, "worker", "examples", "file-processor") });
    state.payloadDir = await preparePayload(REPO, process.arch === "arm64" ? "arm64" : "x86_64", defaultCacheDir(REPO), state.settings.appDir);
    for (const step of [stepWaitForSsh, stepUpload, stepProvision]) await step.run(state, recordingContext(step.name, lines));
  });
  after(async () => {
    state?.connection?.dispose();
    await host?.stop();
  });

  const validate = async (env: Record<string, string>) => {
    lines = [];
    state.settings.selfCheckEnv = env;
    try {
      await stepValidate.run(state, recordingContext("validate", lines));
      return undefined;
    } catch (e) {
      return e as Error;
    }
  };

  /** The prod stack's file as it was before it had an app: a command under /opt that no bake installs. */
  const oldProd = () => {
    const { raw } = readStackFile(REPO, "prod");
    const values: Record<string, string> = { ...raw.values, "kiln:workerCommand": "/opt/file-processor/venv/bin/python3 /opt/file-processor/worker.py" };
    delete values["kiln:workerApp"];
    delete values["kiln:workerAppHealthPath"];
    return selfCheckEnvironment(parseStackConfig("prod", { ...raw, values }));
  };

  it("fails the bake of a stack whose command's program is not in the image (the old prod stack)", async () => {
    // Without kiln:bake.appDir, as the old stack was: nothing installed /opt/file-processor.
    host.chroot(["mv", "/opt/file-processor", "/opt/file-processor.aside"]);
    const e = await validate(oldProd()).finally(() => host.chroot(["mv", "/opt/file-processor.aside", "/opt/file-processor"]));
    assert.ok(e instanceof StepError, lines.join("\n"));
    assert.match(e.message, new RegExp(`the stack's worker does not start on the image: the self-check of WORKER_COMMAND=/opt/file-processor/venv/bin/python3 /opt/file-processor/worker\\.py exited ${EXIT.CONFIG_ERROR} \\(configuration error\\)`));
    assert.ok(lines.some((l) => /WORKER_COMMAND runs \/opt\/file-processor\/venv\/bin\/python3, which does not exist/.test(l)), lines.join("\n"));
  });

  it("fails a handler that is not there", async () => {
    const e = await validate({ ...demoWorkerEnv("ap-northeast-1"), WORKER_HANDLER: "/opt/app/handler.js" });
    assert.ok(e instanceof StepError, lines.join("\n"));
    assert.match(e.message, /self-check of WORKER_HANDLER=\/opt\/app\/handler\.js exited 78/);
  });

  it("passes a handler the image holds, run as the worker's user with nothing from the SSH session", async () => {
    assert.equal(await validate(demoWorkerEnv("ap-northeast-1")), undefined, lines.join("\n"));
    assert.ok(lines.includes(`validate: self-check as ${INSTALL.user} with the stack's WORKER_HANDLER=${INSTALL.bundleDir}/examples/demo-handler.js`), lines.join("\n"));
  });

  it("passes the prod stack's app, installed by its appDir's script, once it answers its health check", async () => {
    const env = selfCheckEnvironment(parseStackConfig("prod", readStackFile(REPO, "prod").raw));
    assert.equal(await validate(env), undefined, lines.join("\n"));
  });

  it("fails an app that never answers its health check within WORKER_APP_START_TIMEOUT", async () => {
    const env = { ...selfCheckEnvironment(parseStackConfig("prod", readStackFile(REPO, "prod").raw)), WORKER_APP: "/bin/sleep 600", WORKER_APP_START_TIMEOUT: "2" };
    const e = await validate(env);
    assert.ok(e instanceof StepError, lines.join("\n"));
    assert.match(e.message, /self-check of WORKER_APP=\/bin\/sleep 600 .*exited 78/);
  });
});
