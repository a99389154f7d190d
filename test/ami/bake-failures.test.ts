import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ec2Steps } from "../../ami/bake";
import type { BakeState } from "../../ami/state";
import { Step } from "../../ami/step";
import { readStackFile } from "../../infra/stack-file";
import { FakeEc2, NO_LEFTOVERS } from "../support/fake-aws";
import { bakeOnFake, linkProdApp } from "../support/bake-on-fake";
import { BuilderHost } from "../support/builder-host";
import { REPO } from "../support/pulumi-harness";

/**
 * Whatever goes wrong, and whenever the user presses Ctrl-C, a bake leaves nothing behind: every
 * step of the full bake in turn fails right after doing its work (the worst moment: all it made
 * exists), or is interrupted while it runs. EC2 is the stateful fake; the builder is a real host.
 */
const STEPS = ec2Steps({}).map((s) => s.name);

describe("bake-ami leaves nothing behind, whichever step fails or is interrupted", function () {
  this.timeout(10 * 60_000);
  let host: BuilderHost;
  let dir: string;
  let fake: FakeEc2;

  before(async () => {
    host = await BuilderHost.start({ user: "ec2-user" });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "kiln-bake-failures-"));
    fs.copyFileSync(path.join(REPO, "Pulumi.prod.yaml"), path.join(dir, "Pulumi.prod.yaml"));
    linkProdApp(dir);
  });
  after(async () => {
    await host?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    fake = new FakeEc2({ publicIp: "127.0.0.1" });
    // A clean step that ran took the host's keys; give them back for the next bake.
    host.reauthorize();
  });
  afterEach(() => fake.restore());

  /** The full bake with `name` replaced by `wrap(real)`, and the builder routed to the host. */
  const bakeWith = (name: string, wrap: (real: Step<BakeState>) => Step<BakeState>, abort?: AbortController) =>
    bakeOnFake(fake, dir, () => host, { abort, wrap: (s) => (s.name === name ? wrap(s) : s) });

  function assertNothingLeft(output: string) {
    assert.deepEqual(fake.leftovers(), NO_LEFTOVERS, output);
    assert.equal(readStackFile(dir, "prod").raw.values["kiln:amiId"], "ami-0a1b2c3d4e5f60718", "the stack file is untouched");
    assert.equal(fs.existsSync(path.join(dir, "manifest.json")), false, "no manifest for a bake that made nothing");
  }

  for (const name of STEPS) {
    it(`a failure in ${name}: exit 1, the step named, nothing left`, async () => {
      const { result, output } = await bakeWith(name, (real) => ({
        ...real,
        async run(state, ctx) {
          await real.run(state, ctx);
          throw new Error(`injected failure after ${name} did its work`);
        },
      }));
      assert.equal(result.exitCode, 1, output);
      assert.match(output, new RegExp(`Failed in ${name}: injected failure after ${name} did its work`));
      // An image the failing bake completed is not half-made: it stays, tagged, for the next bake to reuse.
      if (name === "create-image") {
        assert.equal(fake.leftovers().images.length, 0);
        fake.images.clear();
        fake.snapshots.clear();
      }
      assertNothingLeft(output);
    });

    it(`Ctrl-C during ${name}: exit 130, nothing left`, async () => {
      const abort = new AbortController();
      const { result, output } = await bakeWith(
        name,
        (real) => ({
          ...real,
          async run(state, ctx) {
            const running = real.run(state, ctx);
            setImmediate(() => abort.abort());
            await running;
          },
        }),
        abort,
      );
      assert.equal(result.exitCode, 130, output);
      assert.match(output, /Interrupted by SIGINT; everything this bake created was cleaned up/);
      if (name === "create-image") {
        fake.images.clear();
        fake.snapshots.clear();
      }
      assertNothingLeft(output);
    });
  }
});
