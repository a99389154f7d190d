import { strict as assert } from "node:assert";
import { GetParameterCommandInput } from "@aws-sdk/client-ssm";
import { AL2023_PARAMETERS, stepResolveBaseImage } from "../../ami/steps/resolve-base-image";
import { fakeBakeState } from "../support/fake-aws/bake-state";
import { ec2Error, FakeEc2 } from "../support/fake-aws/ec2";
import { awsError } from "../support/fake-aws";
import { context, rejectsWithStep } from "./aws-step-helpers";

describe("step resolve-base-image", () => {
  let fake: FakeEc2;
  beforeEach(() => (fake = new FakeEc2()));
  afterEach(() => fake.restore());

  for (const [instanceType, arch] of [
    ["t3.medium", "x86_64"],
    ["t4g.medium", "arm64"],
    ["t2.micro", "x86_64"],
  ] as const) {
    it(`defaults to AL2023's public parameter for ${instanceType}'s architecture (${arch})`, async () => {
      const state = fakeBakeState(fake, { settings: { instanceType } });
      await stepResolveBaseImage.run(state, context());
      assert.equal(state.architecture, arch);
      assert.equal(state.baseImageId, fake.al2023[arch]);
      assert.equal(state.rootDeviceName, "/dev/xvda");
      assert.deepEqual(fake.inputs<GetParameterCommandInput>("GetParameter"), [{ Name: AL2023_PARAMETERS[arch] }]);
      assert.deepEqual(fake.operations(), ["DescribeInstanceTypes", "GetParameter", "DescribeImages"]);
    });
  }

  it("takes an AMI id as it is, and an SSM path (with or without resolve:ssm:)", async () => {
    const own = fake.addImage({ name: "golden", rootDeviceName: "/dev/sda1" });
    const byId = fakeBakeState(fake, { settings: { baseImage: own } });
    await stepResolveBaseImage.run(byId, context());
    assert.equal(byId.baseImageId, own);
    assert.equal(byId.rootDeviceName, "/dev/sda1");
    assert.deepEqual(fake.inputs("GetParameter"), []);

    fake.parameters.set("/golden/latest", own);
    for (const baseImage of ["/golden/latest", "resolve:ssm:/golden/latest"]) {
      const byPath = fakeBakeState(fake, { settings: { baseImage } });
      await stepResolveBaseImage.run(byPath, context());
      assert.equal(byPath.baseImageId, own);
    }
  });

  it("refuses an image of the other architecture, one not available, or a root volume smaller than the image's", async () => {
    await rejectsWithStep(
      stepResolveBaseImage.run(fakeBakeState(fake, { settings: { instanceType: "t4g.medium", baseImage: fake.al2023.x86_64 } }), context()),
      "resolve-base-image",
      "InvalidParameterValue",
      /x86_64.*arm64/,
    );
    const pending = fake.addImage({ name: "pending", state: "pending" });
    await rejectsWithStep(stepResolveBaseImage.run(fakeBakeState(fake, { settings: { baseImage: pending } }), context()), "resolve-base-image", "InvalidAMIID.Unavailable");
    const big = fake.addImage({ name: "big", rootSize: 50 });
    const e = await rejectsWithStep(stepResolveBaseImage.run(fakeBakeState(fake, { settings: { baseImage: big } }), context()), "resolve-base-image", "InvalidBlockDeviceMapping");
    assert.match(e.hint!, /rootVolumeSize.*50/);
  });

  it("refuses what is neither an AMI id nor a path, a parameter that holds no AMI id, an unknown instance type or Mac", async () => {
    await rejectsWithStep(stepResolveBaseImage.run(fakeBakeState(fake, { settings: { baseImage: "amazon-linux" } }), context()), "resolve-base-image", undefined, /neither/);
    fake.parameters.set("/odd", "hello");
    await rejectsWithStep(stepResolveBaseImage.run(fakeBakeState(fake, { settings: { baseImage: "/odd" } }), context()), "resolve-base-image", undefined, /holds "hello"/);
    await rejectsWithStep(stepResolveBaseImage.run(fakeBakeState(fake, { settings: { instanceType: "t9.huge" } }), context()), "resolve-base-image", "InvalidInstanceType");
    await rejectsWithStep(stepResolveBaseImage.run(fakeBakeState(fake, { settings: { instanceType: "mac2.metal" } }), context()), "resolve-base-image", "InvalidInstanceType", /arm64_mac/);
  });

  it("says which parameter or image is missing, pointing at kiln:bake.baseImage", async () => {
    const e1 = await rejectsWithStep(
      stepResolveBaseImage.run(fakeBakeState(fake, { settings: { baseImage: "/nope/nothing" } }), context()),
      "resolve-base-image",
      "ParameterNotFound",
      /\/nope\/nothing/,
    );
    assert.match(e1.hint!, /kiln:bake\.baseImage/);
    const e2 = await rejectsWithStep(
      stepResolveBaseImage.run(fakeBakeState(fake, { settings: { baseImage: "ami-0123456789abcdef0" } }), context()),
      "resolve-base-image",
      "InvalidAMIID.NotFound",
    );
    assert.match(e2.hint!, /kiln:bake\.baseImage/);
  });

  for (const [operation, error] of [
    ["DescribeInstanceTypes", ec2Error("UnauthorizedOperation", "not allowed", 403)],
    ["GetParameter", awsError("ssm", "AccessDeniedException", "not allowed")],
    ["DescribeImages", ec2Error("RequestLimitExceeded", "slow down", 503)],
  ] as const) {
    it(`reports ${operation} failing with ${error.name}`, async () => {
      fake.failNext(operation, error);
      await rejectsWithStep(stepResolveBaseImage.run(fakeBakeState(fake), context()), "resolve-base-image", error.name);
    });
  }
});
