import { strict as assert } from "node:assert";
import { backlogTarget, desiredCapacity } from "../../infra/scaling-rule";

describe("the backlog-per-instance rule", () => {
  it("aims at what one instance finishes within the acceptable latency", () => {
    assert.equal(backlogTarget(900, 300), 3000);
    assert.equal(backlogTarget(10, 100), 100, "AWS's own example: 10 s latency, 0.1 s per message");
    assert.equal(backlogTarget(1, 300), 3);
  });

  it("sizes the group to the backlog within min and max, starting one instance from zero", () => {
    assert.equal(desiredCapacity(0, 100, 0, 5), 0);
    assert.equal(desiredCapacity(1, 100, 0, 5), 1, "any backlog at all starts a worker");
    assert.equal(desiredCapacity(250, 100, 0, 5), 3);
    assert.equal(desiredCapacity(10_000, 100, 0, 5), 5);
    assert.equal(desiredCapacity(0, 100, 1, 5), 1);
  });
});
