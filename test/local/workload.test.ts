import { strict as assert } from "node:assert";
import { demoBodies, failingCount } from "../../local/workload";

describe("the demo workload", () => {
  it("asks round(count × fail rate) messages to fail, spread over the run", () => {
    const bodies = demoBodies(200, 0.03);
    assert.equal(bodies.length, 200);
    assert.equal(failingCount(bodies), 6);
    const failing = bodies.flatMap((b, i) => (JSON.parse(b).fail ? [i] : []));
    assert.ok(failing[0] > 10 && failing[5] > 150, `spread: ${failing}`);
    assert.equal(failingCount(demoBodies(60, 0)), 0);
    assert.equal(failingCount(demoBodies(60, 1)), 60);
    assert.equal(new Set(bodies).size, 200, "each body names its message");
  });
});
