import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { EC2Client } from "@aws-sdk/client-ec2";
import { SSMClient } from "@aws-sdk/client-ssm";
import { bakeClientOptions } from "../../ami/aws-clients";
import { bake, BakeOptions, EXIT_CLEANUP_INCOMPLETE, sshSteps } from "../../ami/bake";
import { readStackFile } from "../../infra/stack-file";
import { ec2Error, FakeEc2 } from "../support/fake-aws";
import { bakeOnFake, linkProdApp } from "../support/bake-on-fake";
import { REPO } from "../support/pulumi-harness";

/**
 * How a bake ends when AWS misbehaves around it: an endpoint that never answers, Ctrl-C or SIGTERM
 * while a call hangs, a cleanup that fails after the image was made, a dry run with no credentials.
 */
function stackDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kiln-bake-outcomes-"));
  fs.copyFileSync(path.join(REPO, "Pulumi.prod.yaml"), path.join(dir, "Pulumi.prod.yaml"));
  linkProdApp(dir);
  return dir;
}

/** An endpoint that accepts connections and never answers: what a wedged proxy or firewall looks like. */
async function silentEndpoint() {
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  const server = net.createServer((s) => {
    accepted++;
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as net.AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    accepted: () => accepted,
    close: () => new Promise<void>((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); }),
  };
}

const noCredentials = async () => {
  const e = new Error("Could not load credentials from any providers");
  e.name = "CredentialsProviderError";
  throw e;
};

describe("how a bake ends", function () {
  this.timeout(120_000);
  let dir: string;
  beforeEach(() => (dir = stackDir()));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const run = async (extra: Partial<BakeOptions>) => {
    let output = "";
    const result = await bake({ root: REPO, stackDir: dir, stack: "prod", manifest: path.join(dir, "manifest.json"), out: { write: (t) => void (output += t) }, ...extra });
    return { result, output };
  };

  describe("against an endpoint that accepts and never answers", () => {
    let silent: Awaited<ReturnType<typeof silentEndpoint>>;
    beforeEach(async () => (silent = await silentEndpoint()));
    afterEach(async () => silent.close());
    const clients = (requestTimeoutSeconds: number) => {
      const opts = { endpoint: silent.endpoint, region: "ap-northeast-1", credentials: { accessKeyId: "a", secretAccessKey: "b" }, ...bakeClientOptions(requestTimeoutSeconds) };
      return { ec2: new EC2Client(opts), ssm: new SSMClient(opts) };
    };

    for (const signal of ["SIGTERM", "SIGINT"] as const) {
      it(`stops at ${signal} while a call hangs (the request timeout far off), cancelling the request`, async () => {
        const bakeDone = run({ clients: clients(300), trapSignals: true });
        while (silent.accepted() === 0) await new Promise((r) => setTimeout(r, 20));
        process.kill(process.pid, signal);
        const { result, output } = await bakeDone;
        assert.equal(result.exitCode, 130, output);
        assert.match(output, new RegExp(`Interrupted by ${signal}; everything this bake created was cleaned up`));
        // The hung request itself was cancelled (AbortError), not left to its 300 s timeout.
        const first = result.report!.steps[0];
        assert.equal(first.status, "cancelled");
        assert.match(first.error ?? "", /DescribeRegions failed \(AbortError\): Request aborted/);
      });
    }

    it("fails the call at the request timeout (after the SDK's retries), naming the network", async () => {
      const { result, output } = await run({ clients: clients(1) });
      assert.equal(result.exitCode, 1, output);
      assert.match(output, /Failed in pre-validate \(TimeoutError\): checking credentials and region with DescribeRegions failed/);
      assert.match(output, /What to do: cannot reach the AWS endpoint/);
      assert.ok(silent.accepted() >= 2, "the SDK retried a timed-out request");
    });
  });

  describe("when a cleanup fails after the image was made", () => {
    let fake: FakeEc2;
    beforeEach(() => (fake = new FakeEc2({ publicIp: "127.0.0.1" })));
    afterEach(() => fake.restore());

    it(`keeps the image: records it, writes the manifest with what is left, exits ${EXIT_CLEANUP_INCOMPLETE}`, async () => {
      fake.failNext("TerminateInstances", ec2Error("UnauthorizedOperation", "You are not authorized to perform this operation.", 403), Infinity);
      const ssh = new Set(sshSteps().map((s) => s.name));
      // The builder-side steps are another suite's (bake.test.ts): here only what happens after the image matters.
      const { result, output } = await bakeOnFake(fake, dir, () => undefined, { adjustSteps: (steps) => steps.filter((s) => !ssh.has(s.name)) });
      assert.equal(result.exitCode, EXIT_CLEANUP_INCOMPLETE, output);
      const imageId = result.imageId!;
      assert.match(imageId, /^ami-/);
      assert.equal(fake.images.get(imageId)?.state, "available");
      assert.equal(readStackFile(dir, "prod").raw.values["kiln:amiId"], imageId, "the stack file points at it");
      const manifest = JSON.parse(fs.readFileSync(path.join(dir, "manifest.json"), "utf8"));
      assert.equal(manifest.ami, imageId);
      assert.deepEqual(manifest.leftBehind.map((l: { step: string }) => l.step), ["run-builder", "security-group"]);
      assert.match(output, /LEFT BEHIND/);
      assert.match(output, new RegExp(`Baked ${imageId}`));
      assert.match(output, /The image is complete, but this bake's cleanup is not/);
    });
  });

  describe("--dry-run with no credentials", () => {
    const offline = () => {
      const opts = { endpoint: "http://127.0.0.1:9", region: "ap-northeast-1", credentials: noCredentials, ...bakeClientOptions(5) };
      return { ec2: new EC2Client(opts), ssm: new SSMClient(opts) };
    };

    it("still builds the payload and prints the content hash and plan, marking what it could not check", async () => {
      const { result, output } = await run({ dryRun: true, clients: offline(), flags: { baseImage: "ami-0123456789abcdef0", instanceType: "m7g.large" } });
      assert.equal(result.exitCode, 0, output);
      assert.match(result.state.contentHash ?? "", /^[0-9a-f]{64}$/);
      assert.match(output, new RegExp(`content hash\\s+${result.state.contentHash}`));
      assert.match(output, /base image\s+ami-0123456789abcdef0 \(arm64\)/, "the architecture follows the Graviton type's name");
      assert.match(output, /Not checked \(CredentialsProviderError: .*Could not load credentials/);
      for (const step of ["pre-validate", "resolve-base-image", "reuse-image"]) assert.match(output, new RegExp(`\\? ${step}: `));
      assert.ok(fs.existsSync(path.join(result.state.payloadDir!, "node", "bin", "node")), "the payload was prepared");
    });

    it("says the content hash needs AWS when the base image is an SSM parameter, and prints the payload's", async () => {
      const { result, output } = await run({ dryRun: true, clients: offline() });
      assert.equal(result.exitCode, 0, output);
      assert.equal(result.state.contentHash, undefined);
      assert.match(output, /content hash\s+not known offline/);
      assert.match(output, new RegExp(`payload hash\\s+${result.state.payloadHash}`));
      assert.match(output, /\? resolve-base-image: which image \/aws\/service\/ami-amazon-linux-latest\/al2023-ami-kernel-default-x86_64 names/);
    });
  });
});
