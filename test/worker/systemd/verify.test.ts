import { strict as assert } from "node:assert";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { INSTALL } from "../../../worker/contract";
import { defaultLimits, renderSizingDropIn, resourceLimits } from "../../../worker/env/sizing";
import { SystemdRoot, assertVerifies } from "./systemd-analyze";
import { REPORTER_FOR_WORKER, UNITS_DIR, UNIT_NAMES } from "./unit-file";

const committed = () => Object.fromEntries(UNIT_NAMES.map((n) => [n, fs.readFileSync(path.join(UNITS_DIR, n), "utf8")]));
/** Measured on systemd 252 (Debian 12): 1.5 for the worker and its failure reporter, 1.8 for the env unit. */
const MAX_EXPOSURE = 2.0;

describe("the worker's systemd units, checked by the real systemd-analyze", function () {
  this.timeout(60_000);
  const roots: SystemdRoot[] = [];
  const root = (units: Record<string, string>, opts?: { stubs?: boolean }) => {
    const r = new SystemdRoot(units, opts);
    roots.push(r);
    return r;
  };
  afterEach(() => roots.splice(0).forEach((r) => r.remove()));

  before(() => {
    const version = execFileSync("systemd-analyze", ["--version"], { encoding: "utf8" });
    assert.match(version, /^systemd \d+/, "systemd-analyze is missing: .ci/run installs Debian's systemd package");
  });

  it("verifies every unit: exit 0 and not one warning", () => {
    const r = root(committed());
    for (const name of [...UNIT_NAMES, REPORTER_FOR_WORKER]) assertVerifies(r.verify(name));
    assertVerifies(r.verify(...UNIT_NAMES));
  });

  it("verifies with the sizing drop-in kiln-worker env writes, so systemd accepts its settings", () => {
    const machine = { vcpus: 2, totalMemoryBytes: 4 * 1024 ** 3 };
    const dropIn = path.relative("/etc/systemd/system", INSTALL.sizingDropIn);
    const r = root({ ...committed(), [dropIn]: renderSizingDropIn(defaultLimits(machine), machine) });
    assertVerifies(r.verify("kiln-worker.service"));
  });

  it("accepts exactly the sizing overrides systemd accepts", () => {
    const machine = { vcpus: 2, totalMemoryBytes: 4 * 1024 ** 3 };
    const dropIn = path.relative("/etc/systemd/system", INSTALL.sizingDropIn);
    const candidates: Record<string, string>[] = [
      ...["3G", "2560M", "1.5G", "70%", "62.5%", "infinity", "2147483648", "3 GB", "2g", "3GiB", "-1G", "1e9"].map((v) => ({ KILN_MEMORY_MAX: v })),
      ...["150%", "150.5%", "150", "0%", "abc%", "1.234%"].map((v) => ({ KILN_CPU_QUOTA: v })),
    ];
    for (const env of candidates) {
      let text: string;
      try {
        text = renderSizingDropIn(resourceLimits(machine, env), machine);
      } catch {
        // Refused by kiln: systemd must refuse the raw value too.
        const [[key, value]] = Object.entries(env);
        text = `[Service]\n${key === "KILN_CPU_QUOTA" ? "CPUQuota" : "MemoryMax"}=${value}\n`;
        const r = root({ ...committed(), [dropIn]: text });
        assert.notEqual(r.verify("kiln-worker.service").stderr, "", `kiln refuses ${JSON.stringify(env)}, systemd takes it`);
        continue;
      }
      assertVerifies(root({ ...committed(), [dropIn]: text }).verify("kiln-worker.service"));
    }
  });

  describe("the check itself fails when it should", () => {
    const broken = (name: string, edit: (text: string) => string) => ({ ...committed(), [name]: edit(committed()[name]) });

    it("on a misspelled key: verify exits 0 but warns, which is why stderr must be empty", () => {
      const r = root(broken("kiln-worker.service", (t) => t.replace("RestartPreventExitStatus=", "RestartPreventExitStatuss=")));
      const result = r.verify("kiln-worker.service");
      assert.equal(result.status, 0);
      assert.match(result.stderr, /Unknown key 'RestartPreventExitStatuss'/);
      assert.throws(() => assertVerifies(result), /RestartPreventExitStatuss/);
    });

    it("on a value systemd cannot parse", () => {
      const r = root(broken("kiln-worker.service", (t) => t.replace("Restart=always", "Restart=sometimes")));
      assert.throws(() => assertVerifies(r.verify("kiln-worker.service")), /restart specifier, ignoring: sometimes/);
    });

    it("on a setting in the wrong section", () => {
      const r = root(broken("kiln-worker-env.service", (t) => t.replace("[Unit]\n", "[Unit]\nRemainAfterExit=yes\n")));
      assert.throws(() => assertVerifies(r.verify("kiln-worker-env.service")), /RemainAfterExit/);
    });

    it("on a bad value in the sizing drop-in, so the drop-in really is read", () => {
      const dropIn = path.relative("/etc/systemd/system", INSTALL.sizingDropIn);
      const r = root({ ...committed(), [dropIn]: "[Service]\nMemoryMax=3 GB\n" });
      assert.throws(() => assertVerifies(r.verify("kiln-worker.service")), /50-sizing\.conf:2: Invalid memory limit '3 GB'/);
    });

    it("on a program that does not exist in the root", () => {
      const r = root(committed(), { stubs: false });
      assert.throws(() => assertVerifies(r.verify("kiln-worker.service")), new RegExp(`${INSTALL.node}.*No such file`));
    });
  });

  it(`keeps each unit's systemd-analyze security exposure at or below ${MAX_EXPOSURE} (offline, no systemd running)`, () => {
    const r = root(committed());
    // security scores units, not templates: the reporter as systemd instantiates it.
    for (const name of UNIT_NAMES.map((n) => (n.endsWith("@.service") ? REPORTER_FOR_WORKER : n))) {
      const s = r.security(name, MAX_EXPOSURE * 10);
      assert.ok(s.exposure <= MAX_EXPOSURE, `${name}: exposure ${s.exposure}\n${s.table}`);
      assert.equal(s.status, 0, `${name}: --threshold disagrees\n${s.stderr}`);
    }
  });

  it("scores an unhardened unit high, so the exposure check measures something", () => {
    const bare = "[Service]\nExecStart=/opt/kiln/node/bin/node /opt/kiln/worker/kiln-worker.js run\nUser=kiln-worker\n";
    const s = root({ "bare.service": bare }).security("bare.service", MAX_EXPOSURE * 10);
    assert.ok(s.exposure > 8, `exposure ${s.exposure}`);
    assert.notEqual(s.status, 0);
  });
});
