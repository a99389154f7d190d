import { strict as assert } from "node:assert";
import { CreateKeyPairCommandInput, DeleteKeyPairCommandInput } from "@aws-sdk/client-ec2";
import { stepKeyPair } from "../../ami/steps/key-pair";
import { fakeBakeState } from "../support/fake-aws/bake-state";
import { ec2Error, FakeEc2, NO_LEFTOVERS } from "../support/fake-aws/ec2";
import { context, rejectsWithStep } from "./aws-step-helpers";

describe("step key-pair", () => {
  let fake: FakeEc2;
  beforeEach(() => (fake = new FakeEc2()));
  afterEach(() => fake.restore());

  it("makes an ed25519 key pair named and tagged for the build, records it at once, and its cleanup deletes it", async () => {
    const state = fakeBakeState(fake);
    await stepKeyPair.run(state, context());
    const [input] = fake.inputs<CreateKeyPairCommandInput>("CreateKeyPair");
    assert.equal(input.KeyName, `kiln-builder-${state.buildId}`);
    assert.equal(input.KeyType, "ed25519");
    assert.equal(input.KeyFormat, "pem");
    assert.equal(input.TagSpecifications![0].ResourceType, "key-pair");
    const tags = Object.fromEntries(input.TagSpecifications![0].Tags!.map((t) => [t.Key, t.Value]));
    assert.equal(tags["kiln:builder"], "true");
    assert.equal(tags["kiln:build-id"], state.buildId);
    assert.equal(tags["kiln:stack"], "test");
    assert.equal(tags.Team, "files", "the stack's own tags too");

    const key = [...fake.keyPairs.values()][0];
    assert.deepEqual(state.keyPair, { name: key.name, id: key.id, privateKey: key.privateKey });
    assert.match(state.keyPair!.privateKey, /BEGIN OPENSSH PRIVATE KEY/);

    await stepKeyPair.cleanup!(state, context());
    assert.deepEqual(fake.inputs<DeleteKeyPairCommandInput>("DeleteKeyPair"), [{ KeyPairId: key.id }]);
    assert.deepEqual(fake.leftovers(), NO_LEFTOVERS);
  });

  it("has an idempotent cleanup, safe before anything was made", async () => {
    const state = fakeBakeState(fake);
    await stepKeyPair.cleanup!(state, context());
    assert.deepEqual(fake.calls, []);
    await stepKeyPair.run(state, context());
    await stepKeyPair.cleanup!(state, context());
    await stepKeyPair.cleanup!(state, context());
    assert.deepEqual(fake.leftovers(), NO_LEFTOVERS);
  });

  it("reports a failed CreateKeyPair (the name taken by a killed bake) and leaves nothing", async () => {
    const state = fakeBakeState(fake);
    fake.addKeyPair({ name: `kiln-builder-${state.buildId}` });
    const e = await rejectsWithStep(stepKeyPair.run(state, context()), "key-pair", "InvalidKeyPair.Duplicate");
    assert.match(e.hint!, /--reap/);
    assert.equal(state.keyPair, undefined);
    await stepKeyPair.cleanup!(state, context());
    assert.equal(fake.keyPairs.size, 1, "the other bake's key stays");
  });

  it("reports a failed DeleteKeyPair with what to do", async () => {
    const state = fakeBakeState(fake);
    await stepKeyPair.run(state, context());
    fake.failNext("DeleteKeyPair", ec2Error("UnauthorizedOperation", "no", 403));
    const e = await rejectsWithStep(stepKeyPair.cleanup!(state, context()), "key-pair", "UnauthorizedOperation", new RegExp(state.keyPair!.name));
    assert.match(e.hint!, /yourself|--reap/);
    await stepKeyPair.cleanup!(state, context());
    assert.deepEqual(fake.leftovers(), NO_LEFTOVERS);
  });
});
