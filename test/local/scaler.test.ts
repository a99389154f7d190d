import { strict as assert } from "node:assert";
import { desiredCapacity } from "../../infra/scaling-rule";
import { describeScaling, Scaler } from "../../local/scaler";

describe("the local fleet's scaler", () => {
  const settings = { target: 30, min: 0, max: 5, scaleOutCooldownMs: 3_000, scaleInCooldownMs: 15_000 };

  it("asks the shared rule what the backlog needs", () => {
    const scaler = new Scaler(settings, 0);
    for (const visible of [0, 1, 29, 30, 31, 95, 1_000]) {
      assert.equal(scaler.wanted(visible), desiredCapacity(visible, 30, 0, 5), `backlog ${visible}`);
    }
  });

  it("starts at the minimum and leaves zero at once, as the stack's step policy does", () => {
    const scaler = new Scaler({ ...settings, min: 1 }, 0);
    assert.equal(scaler.desired, 1);
    const fromZero = new Scaler(settings, 0);
    assert.equal(fromZero.decide(10, 0), 1);
  });

  it("leaves zero with exactly one worker, as the step policy does, and lets the rule grow it after a cooldown", () => {
    const scaler = new Scaler(settings, 0);
    assert.equal(scaler.decide(100, 0), 1, "the step policy's ExactCapacity 1, not the rule's 4");
    assert.equal(scaler.decide(100, 2_999), 1, "still cooling down");
    assert.equal(scaler.decide(100, 3_000), 4);
    assert.deepEqual(
      scaler.events.map((e) => [e.atMs, e.from, e.to, e.visible, e.why]),
      [
        [0, 0, 1, 100, "from-zero"],
        [3_000, 1, 4, 100, "rule"],
      ],
    );
    assert.match(describeScaling(scaler.events[0], 30), /^scale out from zero: 0 → 1 worker \(the stack's step policy/);
    assert.match(describeScaling(scaler.events[1], 30), /^scale out: 1 → 4 workers \(backlog 100, 30 per worker\)$/);
  });

  it("scales out no more often than the scale-out cooldown", () => {
    const scaler = new Scaler({ ...settings, min: 1 }, 0);
    assert.equal(scaler.decide(40, 0), 2);
    assert.equal(scaler.decide(100, 2_999), 2, "still cooling down");
    assert.equal(scaler.decide(100, 3_000), 4);
  });

  it("takes an operator's count at once and holds the rule off for a cooldown", () => {
    const scaler = new Scaler({ ...settings, min: 1 }, 0);
    scaler.set(5, 0, 1_000, "manual");
    assert.equal(scaler.desired, 5);
    assert.equal(scaler.decide(0, 15_999), 5, "scale-in waits a cooldown after the manual change");
    assert.equal(scaler.decide(0, 16_000), 1);
    assert.deepEqual(scaler.events.map((e) => e.why), ["manual", "rule"]);
  });

  it("scales in only a scale-in cooldown after the last change, straight to what the rule asks", () => {
    const scaler = new Scaler({ ...settings, min: 1 }, 0);
    scaler.decide(150, 0);
    assert.equal(scaler.desired, 5);
    assert.equal(scaler.decide(0, 14_999), 5);
    assert.equal(scaler.decide(0, 15_000), 1);
  });

  it("goes to zero and back: out of zero with one at once, then the rule", () => {
    const scaler = new Scaler(settings, 0);
    scaler.decide(150, 0);
    scaler.decide(150, 3_000);
    assert.equal(scaler.desired, 5);
    assert.equal(scaler.decide(0, 17_999), 5);
    assert.equal(scaler.decide(0, 18_000), 0);
    assert.equal(scaler.decide(200, 18_001), 1, "out of zero at once, with one");
    assert.equal(scaler.decide(200, 21_001), 5, "then the rule, a scale-out cooldown later");
    assert.equal(scaler.decide(31, 30_000), 5, "a scale-out resets the scale-in cooldown");
    assert.equal(scaler.decide(31, 36_001), 2);
  });
});
