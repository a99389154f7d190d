import { strict as assert } from "node:assert";
import { awsCall, awsErrorCode, stepFailure } from "../../ami/aws-errors";
import { StepError } from "../../ami/step";
import { awsError, networkError } from "../support/fake-aws";
import { ec2Error } from "../support/fake-aws/ec2";

describe("AWS errors as the user sees them", () => {
  it("finds the code of a service error, a network error, missing credentials", () => {
    assert.equal(awsErrorCode(ec2Error("InvalidSubnetID.NotFound", "x")), "InvalidSubnetID.NotFound");
    assert.equal(awsErrorCode(awsError("ssm", "ParameterNotFound", "x")), "ParameterNotFound");
    assert.equal(awsErrorCode(networkError("ENOTFOUND")), "ENOTFOUND");
    assert.equal(awsErrorCode(Object.assign(new Error("Could not load credentials from any providers"), { name: "CredentialsProviderError" })), "CredentialsProviderError");
    assert.equal(awsErrorCode(new Error("plain")), undefined);
    assert.equal(awsErrorCode(new StepError("s", "m", "Code")), "Code");
  });

  it("says the step, what it was doing, the code, AWS's message and what to do", () => {
    const e = stepFailure("run-builder", "launching a t3.medium builder", ec2Error("InsufficientInstanceCapacity", "We currently do not have sufficient capacity.", 500));
    assert.equal(e.step, "run-builder");
    assert.equal(e.code, "InsufficientInstanceCapacity");
    assert.equal(e.message, "launching a t3.medium builder failed (InsufficientInstanceCapacity): We currently do not have sufficient capacity.");
    assert.match(e.hint!, /kiln:bake\.instanceType/);
    assert.match(stepFailure("x", "y", ec2Error("UnauthorizedOperation", "no")).hint!, /docs\/bake\.md, "Permissions for whoever bakes"/);
    assert.match(stepFailure("x", "y", networkError()).hint!, /network/);
    assert.ok(stepFailure("x", "y", ec2Error("SomethingNew", "?")).hint, "an unknown code still gets a hint");
  });

  it("lets a step say more about a code than the usual advice, and passes a StepError through", async () => {
    const e = await awsCall("pre-validate", "looking up subnet", () => Promise.reject(ec2Error("InvalidSubnetID.NotFound", "gone")), {
      "InvalidSubnetID.NotFound": "set kiln:bake.subnetId",
    }).catch((x) => x);
    assert.equal(e.hint, "set kiln:bake.subnetId");
    const inner = new StepError("inner", "m", "C", "h");
    assert.equal(await awsCall("outer", "d", () => Promise.reject(inner)).catch((x) => x), inner);
  });
});
