import { strict as assert } from "node:assert";
import { Runner, RunReport } from "../../ami/runner";
import type { BakeState } from "../../ami/state";
import { StepError } from "../../ami/step";
import { stepCreateImage } from "../../ami/steps/create-image";
import { stepKeyPair } from "../../ami/steps/key-pair";
import { stepPreValidate } from "../../ami/steps/pre-validate";
import { stepResolveBaseImage } from "../../ami/steps/resolve-base-image";
import { stepRunBuilder } from "../../ami/steps/run-builder";
import { stepSecurityGroup } from "../../ami/steps/security-group";
import { awsError } from "../support/fake-aws";
import { fakeBakeState } from "../support/fake-aws/bake-state";
import { ec2Error, FakeEc2, NO_LEFTOVERS } from "../support/fake-aws/ec2";

/** kiln's AWS steps in bake order (the SSH steps, which are not here, run between run-builder and create-image). */
const STEPS = [stepPreValidate, stepResolveBaseImage, stepKeyPair, stepSecurityGroup, stepRunBuilder, stepCreateImage];

interface Call {
  operation: string;
  /** The step whose run made it. */
  step: string;
  /** How many calls of the same operation came before it. */
  nth: number;
}

/** A bake under the real runner, noting which step made each call of the run phase. */
async function bake(fake: FakeEc2, state: BakeState, opts: { abort?: AbortController; onStepStart?: (step: string) => void } = {}) {
  const runner = new Runner(STEPS);
  const marks: { step: string; at: number }[] = [];
  let runEnd = -1;
  runner.on("step-start", (s) => {
    marks.push({ step: s.name, at: fake.calls.length });
    opts.onStepStart?.(s.name);
  });
  runner.on("cleanup-start", () => runEnd < 0 && (runEnd = fake.calls.length));
  const report = await runner.run(state, opts.abort);
  const counts = new Map<string, number>();
  const calls: Call[] = fake.calls.slice(0, runEnd < 0 ? undefined : runEnd).map((c, i) => {
    const nth = counts.get(c.operation) ?? 0;
    counts.set(c.operation, nth + 1);
    return { operation: c.operation, step: marks.filter((m) => m.at <= i).at(-1)!.step, nth };
  });
  return { report, calls };
}

function failureCode(report: RunReport): string | undefined {
  const e = report.failure?.error;
  return e instanceof StepError ? e.code : undefined;
}

describe("the AWS steps under the runner", () => {
  let fake: FakeEc2;
  afterEach(() => fake?.restore());

  it("bake an available, tagged image, and leave nothing else behind", async () => {
    fake = new FakeEc2();
    const state = fakeBakeState(fake);
    const { report } = await bake(fake, state);
    assert.equal(report.ok, true, report.failure?.error.message);
    assert.deepEqual(report.leftBehind, []);
    const image = fake.images.get(state.imageId!)!;
    assert.equal(image.state, "available");
    assert.equal(image.tags["kiln:content-hash"], "c0ffee");
    assert.equal(fake.instances.get(state.instanceId!)!.state, "terminated");
    assert.deepEqual(fake.leftovers(), NO_LEFTOVERS);
  });

  /** Every AWS call a clean run makes, with the step that makes it: what the two suites below break. */
  let calls: Call[] = [];
  before(async () => {
    const probe = new FakeEc2();
    try {
      calls = (await bake(probe, fakeBakeState(probe))).calls;
    } finally {
      probe.restore();
    }
    assert.ok(calls.length > 15, `${calls.length} calls`);
  });

  describe("with each call of the run failing in turn", () => {

    it("fail in the step that made the call, with its code, and leave nothing behind", async () => {
      for (const call of calls) {
        fake = new FakeEc2();
        const error = call.operation === "GetParameter" ? awsError("ssm", "AccessDeniedException", "denied") : ec2Error("UnauthorizedOperation", "denied", 403);
        fake.failNext(call.operation, error, 1, call.nth);
        const state = fakeBakeState(fake);
        const { report } = await bake(fake, state);
        const what = `${call.operation} #${call.nth + 1} in ${call.step}`;
        assert.equal(report.ok, false, what);
        assert.equal(report.failure?.step, call.step, what);
        assert.equal(failureCode(report), error.name, what);
        assert.deepEqual(report.leftBehind, [], what);
        assert.deepEqual(fake.leftovers(), NO_LEFTOVERS, what);
        fake.restore();
      }
      fake = new FakeEc2();
    });
  });

  describe("with Ctrl-C", () => {

    async function interrupted(trigger: (abort: AbortController) => Parameters<typeof bake>[2], what: string) {
      fake = new FakeEc2();
      const abort = new AbortController();
      const { report } = await bake(fake, fakeBakeState(fake), { abort, ...trigger(abort) });
      assert.ok(abort.signal.aborted, what);
      assert.equal(report.ok, false, what);
      assert.ok(report.interrupted, what);
      assert.deepEqual(report.leftBehind, [], what);
      assert.deepEqual(fake.leftovers(), NO_LEFTOVERS, what);
      fake.restore();
    }

    it("as each step starts: leave nothing behind", async () => {
      for (const step of STEPS.map((s) => s.name)) {
        await interrupted((abort) => ({ onStepStart: (name) => name === step && abort.abort() }), step);
      }
      fake = new FakeEc2();
    });

    it("during each call of the run in turn (the call completes, as one already sent does): leave nothing behind", async () => {
      for (const [i, call] of calls.entries()) {
        await interrupted(
          (abort) => {
            fake.onCall = (_c, index) => index === i && abort.abort();
            return {};
          },
          `${call.operation} #${call.nth + 1} in ${call.step}`,
        );
      }
      fake = new FakeEc2();
    });
  });

  it("undo the others when one cleanup fails, and report what is left", async () => {
    fake = new FakeEc2();
    const state = fakeBakeState(fake, { settings: { instanceTimeout: 0.05 } });
    fake.failNext("TerminateInstances", ec2Error("UnauthorizedOperation", "denied", 403));
    const { report } = await bake(fake, state);
    assert.equal(report.ok, false);
    assert.deepEqual(report.leftBehind.map((l) => l.step), ["run-builder", "security-group"], "the group cannot go while the builder runs");
    const left = fake.leftovers();
    assert.deepEqual(left.instances, [state.instanceId]);
    assert.deepEqual(left.securityGroups, [state.securityGroupId]);
    assert.deepEqual(left.keyPairs, [], "the key pair went all the same");
    assert.deepEqual(left.images, []);
  });
});
