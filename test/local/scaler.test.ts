import { strict as assert } from "node:assert";
import { desiredCapacity } from "../../infra/scaling-rule";
import { Scaler } from "../../local/scaler";

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

  it("scales out no more often than the scale-out cooldown", () => {
    const scaler = new Scaler(settings, 0);
    assert.equal(scaler.decide(40, 0), 2);
    assert.equal(scaler.decide(100, 2_999), 2, "still cooling down");
    assert.equal(scaler.decide(100, 3_000), 4);
    assert.deepEqual(
      scaler.events.map((e) => [e.atMs, e.from, e.to, e.visible]),
      [
        [0, 0, 2, 40],
        [3_000, 2, 4, 100],
      ],
    );
  });

  it("scales in only a scale-in cooldown after the last change, straight to what the rule asks", () => {
    const scaler = new Scaler(settings, 0);
    scaler.decide(150, 0);
    assert.equal(scaler.desired, 5);
    assert.equal(scaler.decide(0, 14_999), 5);
    assert.equal(scaler.decide(0, 15_000), 0);
    assert.equal(scaler.decide(200, 15_001), 5, "out of zero at once");
    assert.equal(scaler.decide(31, 20_000), 5, "a scale-out resets the scale-in cooldown");
    assert.equal(scaler.decide(31, 30_001), 2);
  });
});
