import { strict as assert } from "node:assert";
import { DescribeImagesCommandInput } from "@aws-sdk/client-ec2";
import { stepPreValidate } from "../../ami/steps/pre-validate";
import { fakeBakeState } from "../support/fake-aws/bake-state";
import { ec2Error, FakeEc2 } from "../support/fake-aws/ec2";
import { context, rejectsWithStep } from "./aws-step-helpers";

describe("step pre-validate", () => {
  let fake: FakeEc2;
  beforeEach(() => (fake = new FakeEc2()));
  afterEach(() => fake.restore());

  it("probes credentials and region with DescribeRegions, checks the subnet and that the image name is free", async () => {
    const state = fakeBakeState(fake);
    const ctx = context();
    await stepPreValidate.run(state, ctx);
    assert.deepEqual(fake.operations(), ["DescribeRegions", "DescribeSubnets", "DescribeImages"]);
    const [images] = fake.inputs<DescribeImagesCommandInput>("DescribeImages");
    assert.deepEqual(images, { Owners: ["self"], Filters: [{ Name: "name", Values: [state.imageName] }] });
    assert.deepEqual(fake.mutations(), [], "creates nothing");
    assert.equal(stepPreValidate.cleanup, undefined);
  });

  it("warns when the subnet gives no public address", async () => {
    const ctx = context();
    await stepPreValidate.run(fakeBakeState(fake, { settings: { subnetId: fake.privateSubnetId } }), ctx);
    assert.ok(ctx.lines.some((l) => /no public address/.test(l)), ctx.lines.join("\n"));
  });

  it("names the subnet and kiln:bake.subnetId when the subnet does not exist", async () => {
    const state = fakeBakeState(fake, { settings: { subnetId: "subnet-0123456789abcdef0" } });
    const e = await rejectsWithStep(stepPreValidate.run(state, context()), "pre-validate", "InvalidSubnetID.NotFound", /subnet-0123456789abcdef0.*kiln:bake\.subnetId/);
    assert.match(e.hint!, /kiln:bake\.subnetId/);
  });

  it("refuses an image name already taken, or one CreateImage would refuse after the whole bake", async () => {
    const state = fakeBakeState(fake);
    const taken = fake.addImage({ name: state.imageName! });
    await rejectsWithStep(stepPreValidate.run(state, context()), "pre-validate", "InvalidAMIName.Duplicate", new RegExp(taken));
    const colons = fakeBakeState(fake, { state: { imageName: "kiln-worker-test-2026-01-01T00:00:00Z" } });
    await rejectsWithStep(stepPreValidate.run(colons, context()), "pre-validate", "InvalidAMIName.Malformed");
  });

  it("refuses a region that is not one, unknown or not enabled", async () => {
    await rejectsWithStep(stepPreValidate.run(fakeBakeState(fake, { settings: { region: "Tokyo" } }), context()), "pre-validate", undefined, /not an AWS region/);
    fake.regions.find((r) => r.name === "ap-northeast-1")!.optIn = "not-opted-in";
    await rejectsWithStep(stepPreValidate.run(fakeBakeState(fake), context()), "pre-validate", "OptInRequired");
    fake.regions.splice(fake.regions.findIndex((r) => r.name === "ap-northeast-1"), 1);
    await rejectsWithStep(stepPreValidate.run(fakeBakeState(fake), context()), "pre-validate", "InvalidParameterValue", /does not know the region/);
  });

  it("refuses settings for another region than the clients'", async () => {
    await rejectsWithStep(stepPreValidate.run(fakeBakeState(fake, { settings: { region: "eu-west-1" } }), context()), "pre-validate", undefined, /ap-northeast-1.*eu-west-1/);
  });

  for (const [operation, code] of [
    ["DescribeRegions", "AuthFailure"],
    ["DescribeRegions", "UnauthorizedOperation"],
    ["DescribeSubnets", "UnauthorizedOperation"],
    ["DescribeImages", "RequestLimitExceeded"],
  ] as const) {
    it(`reports ${operation} failing with ${code}: the step, the code, what to do`, async () => {
      fake.failNext(operation, ec2Error(code, `${code} from AWS`));
      const e = await rejectsWithStep(stepPreValidate.run(fakeBakeState(fake), context()), "pre-validate", code, new RegExp(`${code} from AWS`));
      assert.ok(e.hint && e.hint.length > 10);
    });
  }
});
