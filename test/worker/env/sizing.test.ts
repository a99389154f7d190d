import { strict as assert } from "node:assert";
import {
  Machine,
  SIZING_OVERRIDES,
  defaultLimits,
  defaultMaxWorkers,
  memoryBudgetMib,
  renderSizingDropIn,
  resourceLimits,
} from "../../../worker/env/sizing";

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
/** What os.totalmem() reports on a t3.medium: 4 GiB less what the kernel keeps for itself. */
const T3_MEDIUM: Machine = { vcpus: 2, totalMemoryBytes: 3_964 * MiB };
const ONE_VCPU_1G: Machine = { vcpus: 1, totalMemoryBytes: 1 * GiB };

describe("worker sizing (the seeds' t3.medium formulas)", () => {
  it("keeps one vCPU for the system: MAX_WORKERS = max(1, vCPUs − 1)", () => {
    assert.equal(defaultMaxWorkers({ vcpus: 1, totalMemoryBytes: GiB }), 1);
    assert.equal(defaultMaxWorkers(T3_MEDIUM), 1);
    assert.equal(defaultMaxWorkers({ vcpus: 4, totalMemoryBytes: 8 * GiB }), 3);
    assert.equal(defaultMaxWorkers({ vcpus: 8, totalMemoryBytes: 16 * GiB }), 7);
  });

  it("budgets (total − 500 MiB − other apps) × 0.7, with 300 MiB for other apps up to 2 GiB and 500 above", () => {
    assert.equal(memoryBudgetMib({ vcpus: 2, totalMemoryBytes: 4 * GiB }), Math.floor((4096 - 500 - 500) * 0.7));
    assert.equal(memoryBudgetMib({ vcpus: 2, totalMemoryBytes: 8 * GiB }), Math.floor((8192 - 1000) * 0.7));
    assert.equal(memoryBudgetMib({ vcpus: 1, totalMemoryBytes: 2 * GiB }), Math.floor((2048 - 500 - 300) * 0.7));
  });

  it("gives a t3.medium the seeds' figures: CPUQuota=150%, MemoryMax about 2G, MemoryHigh 80% of it", () => {
    const l = defaultLimits(T3_MEDIUM);
    assert.equal(l.CPUQuota, "150%");
    const max = Number(l.MemoryMax.replace(/M$/, ""));
    assert.ok(max >= 1900 && max <= 3072, `MemoryMax ${l.MemoryMax}`);
    assert.equal(l.MemoryHigh, `${Math.floor(max * 0.8)}M`);
  });

  it("gives a 1 vCPU / 1 GiB machine 75% of its CPU and a floor of 256 MiB where the formula leaves less", () => {
    assert.deepEqual(defaultLimits(ONE_VCPU_1G), { CPUQuota: "75%", MemoryMax: "256M", MemoryHigh: "204M" });
    // Smaller than the reserves themselves: half of what there is.
    assert.equal(memoryBudgetMib({ vcpus: 1, totalMemoryBytes: 400 * MiB }), 200);
  });

  it("lets the stack's KILN_MEMORY_MAX / KILN_MEMORY_HIGH / KILN_CPU_QUOTA win over the machine", () => {
    assert.deepEqual(
      resourceLimits(T3_MEDIUM, { [SIZING_OVERRIDES.memoryMax]: "3G", [SIZING_OVERRIDES.cpuQuota]: "180%" }),
      { MemoryMax: "3G", MemoryHigh: `${Math.floor(3 * 1024 * 0.8)}M`, CPUQuota: "180%" },
    );
    assert.deepEqual(resourceLimits(T3_MEDIUM, { KILN_MEMORY_MAX: "70%" }).MemoryHigh, "56%");
    assert.deepEqual(resourceLimits(T3_MEDIUM, { KILN_MEMORY_MAX: "infinity" }).MemoryHigh, "infinity");
    const both = resourceLimits(T3_MEDIUM, { KILN_MEMORY_MAX: "3000M", KILN_MEMORY_HIGH: "2500M" });
    assert.deepEqual([both.MemoryMax, both.MemoryHigh], ["3000M", "2500M"]);
    assert.deepEqual(resourceLimits(T3_MEDIUM, { KILN_MEMORY_MAX: "  " }), defaultLimits(T3_MEDIUM));
  });

  it("refuses overrides systemd would silently ignore, naming the variable", () => {
    assert.throws(() => resourceLimits(T3_MEDIUM, { KILN_MEMORY_MAX: "3 GB" }), /KILN_MEMORY_MAX must be .*"3 GB"/);
    assert.throws(() => resourceLimits(T3_MEDIUM, { KILN_MEMORY_HIGH: "2g" }), /KILN_MEMORY_HIGH/);
    assert.throws(() => resourceLimits(T3_MEDIUM, { KILN_CPU_QUOTA: "150" }), /KILN_CPU_QUOTA must be a percentage/);
    assert.throws(() => resourceLimits(T3_MEDIUM, { KILN_CPU_QUOTA: "0%" }), /KILN_CPU_QUOTA/);
  });

  it("renders a [Service] drop-in with exactly the three limits", () => {
    const text = renderSizingDropIn(defaultLimits(T3_MEDIUM), T3_MEDIUM);
    const settings = text.split("\n").filter((l) => l && !l.startsWith("#"));
    assert.deepEqual(settings, ["[Service]", "MemoryHigh=1659M", "MemoryMax=2074M", "CPUQuota=150%"]);
    assert.match(text, /2 vCPU, 3\.9 GiB/);
  });
});
