import { strict as assert } from "node:assert";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { DescribeImagesCommand, DescribeInstancesCommand, DescribeKeyPairsCommand, DescribeSecurityGroupsCommand, DescribeSubnetsCommand } from "@aws-sdk/client-ec2";
import { ListInstanceProfilesCommand } from "@aws-sdk/client-iam";
import { SSMClient } from "@aws-sdk/client-ssm";
import { bakeClientOptions } from "../../ami/aws-clients";
import { bake, BakeOptions, BakeResult } from "../../ami/bake";
import type { BakeState } from "../../ami/state";
import { Step, StepContext } from "../../ami/step";
import { PROFILE_PATH } from "../../ami/steps/instance-profile";
import { readStackFile } from "../../infra/stack-file";
import { linkProdApp } from "../support/bake-on-fake";
import { BuilderHost } from "../support/builder-host";
import { FakeSession, FakeSessionManager, installFakePlugin } from "../support/fake-session-manager";
import { Moto, startMoto } from "../support/moto";
import { motoClients } from "../support/moto-ec2";
import { REPO } from "../support/pulumi-harness";

/**
 * `npm run bake-ami` with kiln:bake.sshInterface session_manager, end to end: EC2 and IAM are moto's,
 * Session Manager's three calls moto lacks are the fake's (every other SSM call goes on to moto), the
 * session-manager-plugin on PATH is the fake one, and the builder is the debootstrap host, whose sshd
 * the session reaches as AWS's would reach the instance's port 22. The builder "boots" as EC2 and
 * cloud-init make it: the key pair's public key is installed for its login user.
 */
const ORIGINAL_AMI = "ami-0a1b2c3d4e5f60718";

interface Run {
  result: BakeResult;
  output: string;
}

describe("bake-ami over Session Manager (moto, a fake Session Manager and plugin, a real host over SSH)", function () {
  this.timeout(10 * 60_000);
  let moto: Moto;
  let sessions: FakeSessionManager;
  let host: BuilderHost;
  let plugin: ReturnType<typeof installFakePlugin>;
  let dir: string;
  let clients: ReturnType<typeof motoClients>;

  before(async () => {
    moto = await startMoto();
    sessions = await FakeSessionManager.start(moto);
    host = await BuilderHost.start({ user: "ec2-user" });
    plugin = installFakePlugin(sessions);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "kiln-bake-ssm-"));
    linkProdApp(dir);
  });
  after(async () => {
    plugin?.restore();
    await host?.stop();
    await sessions?.stop();
    await moto?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(async () => {
    await moto.reset();
    sessions.reset();
    host.reauthorize();
    fs.copyFileSync(path.join(REPO, "Pulumi.prod.yaml"), path.join(dir, "Pulumi.prod.yaml"));
    fs.rmSync(path.join(dir, "manifest.json"), { force: true });
  });
  afterEach(() => {
    // Whatever a test did, no plugin it started may outlive it.
    assert.deepEqual(sessions.livePlugins(), [], "a session-manager-plugin is still running");
  });

  /** What EC2 and cloud-init do for a new instance: its key pair's public key authorizes the login user; the fake routes its port 22 to the host. */
  const builderBoots: Step<BakeState> = {
    name: "test-builder-boots",
    title: "(test) the builder boots with its key pair's key",
    async run(state) {
      const keyFile = path.join(dir, "builder.pem");
      fs.writeFileSync(keyFile, state.keyPair!.privateKey, { mode: 0o600 });
      const pub = execFileSync("ssh-keygen", ["-y", "-f", keyFile], { encoding: "utf8" });
      fs.rmSync(keyFile);
      fs.writeFileSync(host.path("/home/ec2-user/.ssh/authorized_keys"), pub, { mode: 0o600 });
      sessions.route(state.instanceId!, host.port);
    },
  };

  async function bakeOver(extra: Partial<BakeOptions> & { wrap?: (step: Step<BakeState>) => Step<BakeState> } = {}): Promise<Run> {
    const { wrap = (s: Step<BakeState>) => s, settings, ...options } = extra;
    clients = deletesKeyPairsById(motoClients(moto));
    const ssm = new SSMClient({ ...moto.client(), endpoint: sessions.endpoint, ...bakeClientOptions(10) });
    const subnetId = (await clients.ec2.send(new DescribeSubnetsCommand({}))).Subnets![0].SubnetId!;
    clients.sent.length = 0;
    let output = "";
    const result = await bake({
      root: REPO,
      stackDir: dir,
      stack: "prod",
      flags: { subnetId, sshInterface: "session_manager" },
      clients: { ...clients, ssm },
      settings: { pollMs: 1, instanceTimeout: 30, imageTimeout: 30, sshTimeout: 60, ...settings },
      manifest: path.join(dir, "manifest.json"),
      adjustSteps: (steps) => steps.flatMap((s) => [wrap(s), ...(s.name === "run-builder" ? [builderBoots] : [])]),
      out: { write: (t) => void (output += t) },
      ...options,
    });
    ssm.destroy();
    return { result, output };
  }

  /** Nothing of the build is left in moto, and (unless it made `imageId`) nothing was recorded. */
  async function assertNothingLeft(run: Run, opts: { imageId?: string } = {}) {
    const { state } = run.result;
    if (state.instanceId) {
      const builder = (await clients.ec2.send(new DescribeInstancesCommand({ InstanceIds: [state.instanceId] }))).Reservations![0].Instances![0];
      assert.equal(builder.State?.Name, "terminated", run.output);
    }
    assert.deepEqual((await clients.ec2.send(new DescribeKeyPairsCommand({}))).KeyPairs, [], `key pairs\n${run.output}`);
    const groups = (await clients.ec2.send(new DescribeSecurityGroupsCommand({}))).SecurityGroups!.filter((g) => g.GroupName?.startsWith("kiln-builder"));
    assert.deepEqual(groups, [], "security groups");
    assert.deepEqual((await clients.iam.send(new ListInstanceProfilesCommand({ PathPrefix: PROFILE_PATH }))).InstanceProfiles, [], "instance profiles");
    const images = (await clients.ec2.send(new DescribeImagesCommand({ Owners: ["self"] }))).Images!.map((i) => i.ImageId);
    assert.deepEqual(images, opts.imageId ? [opts.imageId] : [], "images");
    for (const s of sessions.sessions.values()) assert.equal(s.status, "Terminated", `session ${s.id} ended`);
    assert.equal(state.tunnel, undefined, "the tunnel is closed");
    assert.equal(readStackFile(dir, "prod").raw.values["kiln:amiId"], opts.imageId ?? ORIGINAL_AMI, "the stack file");
  }

  const only = (): FakeSession => {
    const all = [...sessions.sessions.values()];
    assert.equal(all.length, 1, `one session, got ${all.length}`);
    return all[0];
  };

  /** `step` as it is, except that `act` runs at its first line of output (a provisioning script has started). */
  const atFirstLine = (act: () => void) => (real: Step<BakeState>): Step<BakeState> => ({
    ...real,
    async run(state, ctx) {
      let done = false;
      const watched: StepContext = {
        signal: ctx.signal,
        log(line) {
          ctx.log(line);
          if (!done) act();
          done = true;
        },
      };
      await real.run(state, watched);
    },
  });

  it("bakes through a port-forwarding session: SSH goes through the plugin, then the plugin, the session and the profile go", async () => {
    // The agent reports Online a moment before it takes sessions: the bake waits that out too.
    sessions.agentOnlineAfter = 2;
    sessions.fail("StartSession", "TargetNotConnected", "i-0 is not connected.", 2);
    const run = await bakeOver();
    const { result, output } = run;
    if (process.env.KILN_TEST_VERBOSE) console.log(output);
    assert.equal(result.exitCode, 0, output);
    const imageId = result.imageId!;
    assert.match(imageId, /^ami-/);
    const instanceId = result.state.instanceId!;

    const polls = sessions.calls.filter((c) => c.action === "DescribeInstanceInformation");
    assert.ok(polls.length >= 3, `polled until Online: ${polls.length}`);
    assert.deepEqual(polls[0].input, { Filters: [{ Key: "InstanceIds", Values: [instanceId] }] });
    const starts = sessions.calls.filter((c) => c.action === "StartSession");
    assert.deepEqual(starts.map((c) => c.error), ["TargetNotConnected", "TargetNotConnected", undefined], "retried while not connected");
    const session = only();
    const localPort = Number(session.parameters.localPortNumber[0]);
    assert.deepEqual(
      { target: session.target, document: session.document, port: session.parameters.portNumber },
      { target: instanceId, document: "AWS-StartPortForwardingSession", port: ["22"] },
    );
    assert.match(session.reason!, new RegExp(`^kiln bake ${result.state.buildId}`));
    assert.ok(localPort > 0);
    assert.match(output, new RegExp(`ssm-tunnel: session ${session.id}: 127\\.0\\.0\\.1:${localPort} → ${instanceId}:22`));
    assert.match(output, new RegExp(`wait-for-ssh: connected to 127\\.0\\.0\\.1:${localPort}`));

    // The plugin got what the AWS CLI gives it: the client's endpoint, and the token in its environment, not its command line.
    assert.equal(session.plugin!.endpoint, sessions.endpoint);
    assert.equal(session.plugin!.tokenOnCommandLine, false);
    assert.ok(session.connections >= 1, "SSH went through the session");
    // The host was provisioned through it.
    assert.equal(fs.readlinkSync(host.path("/etc/systemd/system/multi-user.target.wants/kiln-worker.service")), "/etc/systemd/system/kiln-worker.service");

    // Closed as soon as SSH was done (in clean), before the builder was stopped for the image.
    const ended = output.indexOf(`ended session ${session.id}`);
    assert.ok(ended > 0 && ended < output.indexOf("==> [", output.indexOf("clean: SSH session closed")), output);
    assert.deepEqual(sessions.calls.filter((c) => c.action === "TerminateSession").map((c) => c.input), [{ SessionId: session.id }]);
    await assertNothingLeft(run, { imageId });
  });

  it("refuses in pre-validate, before any AWS call, when session-manager-plugin is not installed", async () => {
    const saved = process.env.PATH;
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), "kiln-no-plugin-"));
    process.env.PATH = empty;
    let run: Run;
    try {
      run = await bakeOver();
    } finally {
      process.env.PATH = saved;
      fs.rmSync(empty, { recursive: true });
    }
    assert.equal(run.result.exitCode, 1, run.output);
    assert.match(run.output, /Failed in pre-validate: sshInterface session_manager needs AWS's session-manager-plugin, and there is none on this machine's PATH/);
    assert.match(run.output, /What to do: install AWS's session-manager-plugin \(Debian\/Ubuntu: .*session-manager-plugin\.deb.*\), or reach the builder from inside the VPC with kiln:bake\.sshInterface private_ip/);
    assert.deepEqual(clients.sent, [], "no EC2 or IAM call");
    assert.deepEqual(sessions.calls, [], "no Session Manager call");
    await assertNothingLeft(run);
  });

  it("gives up at the SSH deadline when the builder's agent never comes online, and tears the builder down", async () => {
    sessions.agent = "never";
    const run = await bakeOver({ settings: { sshTimeout: 3 } });
    assert.equal(run.result.exitCode, 1, run.output);
    assert.match(run.output, /Failed in ssm-tunnel: gave up after [\d.]+s waiting for the SSM agent on i-\w+ to come online/);
    assert.match(run.output, /What to do: the builder's SSM agent never reported to Session Manager: its subnet needs a way to the SSM endpoints .*kiln:bake\.sshTimeout/);
    assert.match(run.output, /ssm-tunnel: SSM agent: not registered yet/);
    assert.equal(sessions.calls.filter((c) => c.action === "StartSession").length, 0, "no session was started");
    await assertNothingLeft(run);
  });

  it("an agent that lost its connection is not online: the same deadline", async () => {
    sessions.agent = "connection-lost";
    const run = await bakeOver({ settings: { sshTimeout: 3 } });
    assert.equal(run.result.exitCode, 1, run.output);
    assert.match(run.output, /ssm-tunnel: SSM agent: ConnectionLost/);
    assert.match(run.output, /Failed in ssm-tunnel: gave up after/);
    await assertNothingLeft(run);
  });

  it("a plugin that cannot open the session fails the step with its own words, and the session is ended", async () => {
    const saved = process.env.KILN_FAKE_SSMMESSAGES;
    process.env.KILN_FAKE_SSMMESSAGES = "127.0.0.1:9";
    let run: Run;
    try {
      run = await bakeOver();
    } finally {
      process.env.KILN_FAKE_SSMMESSAGES = saved;
    }
    assert.equal(run.result.exitCode, 1, run.output);
    assert.match(run.output, /Failed in ssm-tunnel: no tunnel to i-\w+:22: session-manager-plugin exited with code 0 before it listened \(its last output: .*Cannot perform start session: opening the data channel/);
    assert.match(run.output, /ssm-tunnel: plugin: Starting session with SessionId: kiln-test-/);
    await assertNothingLeft(run);
  });

  it("a plugin that dies mid-bake fails the bake cleanly, naming the tunnel, and everything is torn down", async () => {
    const run = await bakeOver({
      wrap: (s) => (s.name === "provision" ? atFirstLine(() => process.kill(only().plugin!.pid, "SIGKILL"))(s) : s),
    });
    assert.equal(run.result.exitCode, 1, run.output);
    assert.match(run.output, /ssm-tunnel: the tunnel is down: session-manager-plugin was killed by SIGKILL/);
    assert.match(run.output, /Failed in provision: .*: the Session Manager tunnel is down: session-manager-plugin was killed by SIGKILL/);
    assert.match(run.output, /What to do: session-manager-plugin's output says why the tunnel ended/);
    await assertNothingLeft(run);
  });

  it("Ctrl-C while provisioning through the tunnel: exit 130, the plugin stopped as Ctrl-C stops it, the session ended, nothing left", async () => {
    const abort = new AbortController();
    const run = await bakeOver({ abort, wrap: (s) => (s.name === "provision" ? atFirstLine(() => abort.abort())(s) : s) });
    assert.equal(run.result.exitCode, 130, run.output);
    assert.match(run.output, /Interrupted by SIGINT; everything this bake created was cleaned up/);
    assert.match(run.output, /ssm-tunnel: stopped: session-manager-plugin exited with code 0 \(its last output: .*Terminate signal received, exiting\./);
    assert.doesNotMatch(run.output, /the tunnel is down/, "stopping it on purpose is not reported as a loss");
    await assertNothingLeft(run);
  });

  it("Ctrl-C while StartSession is answered: the session is recorded and ended, and no plugin is started", async () => {
    const abort = new AbortController();
    sessions.onStartSession = () => abort.abort();
    const run = await bakeOver({ abort });
    assert.equal(run.result.exitCode, 130, run.output);
    const session = only();
    assert.equal(session.plugin, undefined, "no plugin opened it");
    assert.deepEqual(sessions.calls.filter((c) => c.action === "TerminateSession").map((c) => c.input), [{ SessionId: session.id }]);
    await assertNothingLeft(run);
  });

  it("Ctrl-C while waiting for the agent ends the wait at once", async () => {
    sessions.agent = "never";
    const abort = new AbortController();
    const run = await bakeOver({
      abort,
      settings: { sshTimeout: 600 },
      wrap: (s) => (s.name === "ssm-tunnel" ? atFirstLine(() => setTimeout(() => abort.abort(), 50))(s) : s),
    });
    assert.equal(run.result.exitCode, 130, run.output);
    assert.equal(sessions.calls.filter((c) => c.action === "StartSession").length, 0);
    await assertNothingLeft(run);
  });

  it("--on-error=abort keeps the builder and its profile, ends the tunnel, and says how to open one again", async () => {
    const run = await bakeOver({ onError: "abort", wrap: (s) => (s.name === "upload" ? failing(s) : s) });
    assert.equal(run.result.exitCode, 1, run.output);
    const login =
      /log in with: aws ssm start-session --region ap-northeast-1 --target (i-\w+) --document-name AWS-StartPortForwardingSession --parameters portNumber=22,localPortNumber=2222, then in another terminal: ssh -i (\S+) -p 2222 ec2-user@127\.0\.0\.1/.exec(run.output);
    assert.ok(login, run.output);
    fs.rmSync(login[2]);
    assert.equal(login[1], run.result.state.instanceId);
    assert.match(run.output, /, instance profile kiln-builder-[\w-]+\./);
    // The plugin is this process's child: it is stopped, and its session ended, whatever is kept.
    assert.equal(only().status, "Terminated");
    const builder = (await clients.ec2.send(new DescribeInstancesCommand({ InstanceIds: [login[1]] }))).Reservations![0].Instances![0];
    assert.equal(builder.State?.Name, "running", "kept for debugging");
  });

  it("a refused TerminateSession is reported, not counted as left behind: the session ends with the builder", async () => {
    sessions.fail("TerminateSession", "AccessDeniedException", "User: arn:aws:iam::123456789012:user/baker is not authorized to perform: ssm:TerminateSession", 5);
    const run = await bakeOver({ wrap: (s) => (s.name === "upload" ? failing(s) : s) });
    assert.equal(run.result.exitCode, 1, run.output);
    assert.match(run.output, /Failed in upload: stopped before upload \(test\)/);
    assert.match(run.output, /ssm-tunnel: could not end session kiln-test-\w+ \(.*AccessDeniedException.*\); it ends with the builder/);
    assert.deepEqual(run.result.report!.leftBehind, []);
    const builder = (await clients.ec2.send(new DescribeInstancesCommand({ InstanceIds: [run.result.state.instanceId!] }))).Reservations![0].Instances![0];
    assert.equal(builder.State?.Name, "terminated");
  });

  it("an older plugin (1.2.497.0 and before) gets the answer on its command line, as the AWS CLI gives it", async () => {
    plugin.restore();
    plugin = installFakePlugin(sessions, { version: "1.2.497.0" });
    try {
      const run = await bakeOver({ wrap: (s) => (s.name === "upload" ? failing(s) : s) });
      assert.equal(run.result.exitCode, 1, run.output);
      assert.match(run.output, /wait-for-ssh: connected to 127\.0\.0\.1:\d+/, "the tunnel carried SSH");
      assert.equal(only().plugin!.tokenOnCommandLine, true);
      await assertNothingLeft(run);
    } finally {
      plugin.restore();
      plugin = installFakePlugin(sessions);
    }
  });
});

/**
 * moto 5.2.1 deletes a key pair by KeyName only (it ignores KeyPairId and answers success), where AWS
 * takes either: name the pair, as AWS would find it by id.
 */
function deletesKeyPairsById<C extends ReturnType<typeof motoClients>>(clients: C): C {
  clients.ec2.middlewareStack.add(
    (next, context) => async (args) => {
      const input = args.input as { KeyPairId?: string; KeyName?: string };
      if (context.commandName === "DeleteKeyPairCommand" && input.KeyPairId && !input.KeyName) {
        const pairs = await clients.ec2.send(new DescribeKeyPairsCommand({ KeyPairIds: [input.KeyPairId] })).catch(() => undefined);
        input.KeyName = pairs?.KeyPairs?.[0]?.KeyName;
      }
      return next(args);
    },
    { step: "initialize", name: "kilnMotoKeyPairById" },
  );
  return clients;
}

/** Fails a step before it runs: the bake stops there, with what came before it done. */
function failing(real: Step<BakeState>): Step<BakeState> {
  return {
    ...real,
    async run() {
      throw new Error(`stopped before ${real.name} (test)`);
    },
  };
}
