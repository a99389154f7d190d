import { strict as assert } from "node:assert";
import { bootLogger } from "../../../worker/env/boot-log";

describe("the boot commands' logger", () => {
  it("takes the worker's LOG_LEVEL, the seeds' WARNING spelling included", () => {
    assert.equal(bootLogger({ LOG_LEVEL: "debug" }, "env").level, "debug");
    assert.equal(bootLogger({ LOG_LEVEL: " WARNING " }, "env").level, "warn");
  });

  it("falls back to info rather than throwing on a level pino does not know, or none", () => {
    assert.equal(bootLogger({ LOG_LEVEL: "loud" }, "report-failure").level, "info");
    assert.equal(bootLogger({}, "report-failure").level, "info");
  });
});
