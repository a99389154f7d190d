import { strict as assert } from "node:assert";
import * as path from "node:path";
import { EXIT, INSTALL, INSTANCE_ENV_FILE, WORKER_DEFAULTS, WORKER_ENV_FILE, WORKER_NODE_FLAGS } from "../../../worker/contract";
import { list, readUnit, seconds, setting } from "./unit-file";

const worker = readUnit("kiln-worker.service");
const env = readUnit("kiln-worker-env.service");
const failed = readUnit("kiln-worker-failed@.service");
const bundle = (command: string) => `${INSTALL.node} ${path.posix.join(INSTALL.bundleDir, "kiln-worker.js")} ${command}`;

describe("kiln-worker.service's restart policy", () => {
  it("restarts a crash, but not a configuration error or a scaled-in instance", () => {
    assert.equal(setting(worker, "Service", "Restart"), "always");
    const prevent = list(worker, "Service", "RestartPreventExitStatus");
    assert.ok(prevent.includes(String(EXIT.CONFIG_ERROR)), `RestartPreventExitStatus=${prevent}`);
    assert.ok(prevent.includes(String(EXIT.SCALED_IN)), `RestartPreventExitStatus=${prevent}`);
    assert.ok(!prevent.includes(String(EXIT.CRASHED)) && !prevent.includes(String(EXIT.RECYCLED)));
  });

  it("counts a recycle and a scale-in as clean exits, and a config error as a failure to report", () => {
    const success = list(worker, "Service", "SuccessExitStatus");
    assert.deepEqual([...success].sort(), [String(EXIT.RECYCLED), String(EXIT.SCALED_IN)].sort());
    assert.equal(setting(worker, "Unit", "OnFailure"), "kiln-worker-failed@%N.service");
  });

  it("sets the start limit in [Unit], where systemd reads it, and never in [Service] as the seeds did", () => {
    for (const key of ["StartLimitIntervalSec", "StartLimitBurst"]) assert.ok(setting(worker, "Unit", key), `[Unit] ${key}`);
    const inService = [...(worker.get("Service")?.keys() ?? [])].filter((k) => k.startsWith("StartLimit"));
    assert.deepEqual(inService, []);
  });

  it("gives up on a crash loop within the start-limit window, so OnFailure really runs", () => {
    const burst = Number(setting(worker, "Unit", "StartLimitBurst"));
    const restartSec = seconds(setting(worker, "Service", "RestartSec"));
    const interval = seconds(setting(worker, "Unit", "StartLimitIntervalSec"));
    assert.ok(restartSec >= 5, "RestartSec keeps a failing dependency from being hammered");
    assert.ok(burst * restartSec < interval, `${burst} restarts ${restartSec}s apart never fill ${interval}s: the loop would go on forever`);
  });

  it("stops by SIGTERM to the worker alone, and waits longer than the default drain", () => {
    assert.equal(setting(worker, "Service", "KillMode"), "mixed");
    assert.equal(setting(worker, "Service", "KillSignal"), "SIGTERM");
    assert.ok(seconds(setting(worker, "Service", "TimeoutStopSec")) > WORKER_DEFAULTS.WORKER_DRAIN_TIMEOUT);
  });
});

describe("how the three units fit together and with the contract", () => {
  it("run the bundle INSTALL names, with the right command each", () => {
    // The worker alone runs with the flags that keep its memory flat (WORKER_NODE_FLAGS).
    assert.equal(setting(worker, "Service", "ExecStart"), `${INSTALL.node} ${WORKER_NODE_FLAGS.join(" ")} ${path.posix.join(INSTALL.bundleDir, "kiln-worker.js")} run`);
    assert.equal(setting(env, "Service", "ExecStart"), bundle("env"));
    assert.equal(setting(failed, "Service", "ExecStart"), bundle("report-failure"));
    assert.equal(setting(worker, "Service", "User"), INSTALL.user);
  });

  it("read the env files the contract names: instance.env for env, worker.env for the worker", () => {
    assert.deepEqual(worker.get("Service")?.get("EnvironmentFile"), [WORKER_ENV_FILE]);
    assert.deepEqual(env.get("Service")?.get("EnvironmentFile"), [INSTANCE_ENV_FILE]);
    // Not worker.env for the reporter: a NODE_OPTIONS there, say, would crash the report of the crash it caused.
    assert.deepEqual(failed.get("Service")?.get("EnvironmentFile"), [INSTANCE_ENV_FILE]);
  });

  it("write the environment before the worker starts, once the network is up, then reload for the drop-in", () => {
    assert.equal(setting(env, "Service", "Type"), "oneshot");
    assert.equal(setting(env, "Service", "RemainAfterExit"), "yes");
    assert.ok(list(env, "Unit", "Before").includes("kiln-worker.service"));
    assert.ok(list(env, "Unit", "After").includes("network-online.target"));
    assert.ok(list(env, "Unit", "Wants").includes("network-online.target"));
    assert.equal(setting(env, "Service", "ExecStartPost"), "/usr/bin/systemctl daemon-reload");
    assert.ok(list(worker, "Unit", "Requires").includes("kiln-worker-env.service"));
    assert.ok(list(worker, "Unit", "After").includes("kiln-worker-env.service"));
    assert.equal(setting(env, "Unit", "OnFailure"), "kiln-worker-failed@%N.service");
  });

  it("give each failing unit a reporter of its own, so systemd passes it the exit status", () => {
    // systemd sets MONITOR_EXIT_STATUS only in a unit that exactly one unit names in OnFailure=
    // ("multiple trigger source candidates for exit status propagation ..., skipping"): without
    // it, exit 78 would look like a crash and replace the instance. A template instantiated with
    // %N is a different unit for each trigger.
    const targets = [worker, env].map((u) => setting(u, "Unit", "OnFailure")!);
    const instances = ["kiln-worker", "kiln-worker-env"].map((n, i) => targets[i].replace("%N", n));
    assert.equal(new Set(instances).size, instances.length, instances.join(" "));
    for (const t of targets) assert.match(t, /^kiln-worker-failed@%N\.service$/);
  });

  it("give a DynamicUser= unit a HOME: without nss-systemd its user has no passwd entry, and the SDK needs one", () => {
    assert.equal(setting(failed, "Service", "DynamicUser"), "yes");
    const home = (failed.get("Service")?.get("Environment") ?? []).find((e) => e.startsWith("HOME="));
    assert.ok(home, "Environment=HOME=... in kiln-worker-failed@.service");
  });

  it("let kiln-worker env write exactly the two files it writes, under ProtectSystem=strict", () => {
    assert.equal(setting(env, "Service", "ProtectSystem"), "strict");
    const writable = list(env, "Service", "ReadWritePaths");
    assert.deepEqual(writable.sort(), [path.dirname(WORKER_ENV_FILE), path.dirname(INSTALL.sizingDropIn)].sort());
    // ReadWritePaths= fails the unit if a path is missing; ConfigurationDirectory= creates them first.
    const created = list(env, "Service", "ConfigurationDirectory").map((d) => `/etc/${d}`);
    assert.deepEqual(created.sort(), writable);
  });

  it("give the worker only its state directory to write, keeping /opt (an app's venv) readable", () => {
    assert.equal(setting(worker, "Service", "ProtectSystem"), "strict");
    assert.deepEqual(list(worker, "Service", "ReadWritePaths"), [INSTALL.stateDir]);
    assert.deepEqual(list(worker, "Service", "StateDirectory").map((d) => `/var/lib/${d}`), [INSTALL.stateDir]);
    for (const key of ["InaccessiblePaths", "TemporaryFileSystem", "RootDirectory", "RootImage", "ProcSubset"]) {
      assert.equal(setting(worker, "Service", key), undefined, `${key} could hide what a WORKER_COMMAND runs`);
    }
  });

  it("keep the seeds' hardening, and leave MemoryDenyWriteExecute off for node's JIT", () => {
    const s = (k: string) => setting(worker, "Service", k);
    assert.equal(s("NoNewPrivileges"), "yes");
    assert.equal(s("PrivateTmp"), "yes");
    assert.equal(s("LimitNOFILE"), "65536");
    assert.ok(Number(s("OOMScoreAdjust")) < 0);
    assert.equal(s("CapabilityBoundingSet"), "");
    assert.equal(s("SystemCallFilter"), "@system-service");
    assert.deepEqual(list(worker, "Service", "RestrictAddressFamilies").sort(), ["AF_INET", "AF_INET6", "AF_UNIX"]);
    assert.equal(s("MemoryDenyWriteExecute"), undefined);
    for (const [k, v] of [["StandardOutput", "journal"], ["StandardError", "journal"], ["SyslogIdentifier", "kiln-worker"]]) {
      assert.equal(s(k), v);
    }
  });
});
