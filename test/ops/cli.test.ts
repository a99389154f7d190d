import { strict as assert } from "node:assert";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { COMMANDS } from "../../ops/commands";
import { ROOT } from "../../local/plan";
import { kiln } from "./support/run-kiln";

describe("kiln's command line (ops/cli.ts)", () => {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "kiln-cli-"));
    fs.writeFileSync(path.join(dir, "Pulumi.broken.yaml"), "config:\n  kiln:minSize: [1\n");
    fs.writeFileSync(path.join(dir, "Pulumi.wrong.yaml"), "config:\n  aws:region: ap-northeast-1\n  kiln:subnetIds: [subnet-0123456789abcdef0]\n  kiln:workerCommand: cat\n  kiln:minSize: 9\n");
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("lists every command, and each one's --help says its usage, exit 0", async () => {
    const overview = await kiln(["--help"]);
    assert.equal(overview.code, 0);
    for (const c of COMMANDS) {
      assert.match(overview.out, new RegExp(`^  ${c.name} +${c.summary.slice(0, 20).replace(/[()]/g, ".")}`, "m"));
      const help = await kiln([...c.name.split(" "), "--help"]);
      assert.equal(help.code, 0, c.name);
      assert.ok(help.out.startsWith(`usage: kiln ${c.name} --stack NAME`), `${c.name}: ${help.out.slice(0, 60)}`);
      assert.match(help.out, /^common flags:$/m);
    }
  });

  it("rejects what it cannot run with one line and exit 2, doing nothing", async () => {
    const cases: [string[], string][] = [
      [["stauts", "--stack", "dev"], 'kiln: unknown command "stauts" (see kiln --help)'],
      [["dlq", "--stack", "dev"], 'kiln: "dlq" needs a subcommand: dlq show, dlq redrive'],
      [["rollout", "undo", "--stack", "dev"], 'kiln: unknown command "rollout undo": rollout status, rollout cancel, rollout rollback'],
      [["status"], "kiln: --stack is required: which stack? (stacks here: dev, prod)"],
      [["status", "--stack", "dev", "--wach"], "kiln: unknown flag --wach (see --help)"],
      [["status", "--stack", "dev", "--local", "--aws"], "kiln: --local and --aws: give one of them, not both"],
      [["eta", "--stack", "prod", "--backlog", "lots"], 'kiln: --backlog must be a whole number from 0 to 1000000000000 (got "lots")'],
      [["logs", "--stack", "dev", "--since", "yesterday"], 'kiln: --since must be a duration such as 90s, 5m, 1h or 2d (got "yesterday")'],
      [["dlq", "redrive", "--stack", "dev", "--cancel", "--wait"], "kiln: --cancel takes no other redrive flag"],
      [["status", "--stack", "nope"], `kiln: --stack nope: No stack "nope": ${path.join(ROOT, "Pulumi.nope.yaml")} does not exist (stacks here: dev, prod)`],
    ];
    for (const [argv, message] of cases) {
      const r = await kiln(argv, { env: { ...process.env, KILN_LOCAL_DIR: path.join(dir, "none") } });
      assert.deepEqual([r.code, r.err.trim(), r.out], [2, message, ""], argv.join(" "));
    }
  });

  it("an invalid stack file is exit 78 with the shared config error, as every kiln command says it", async () => {
    const wrong = await kiln(["eta", "--stack", "wrong", "--stack-dir", dir, "--backlog", "1", "--rate", "1"]);
    assert.equal(wrong.code, 78);
    assert.match(wrong.err, /^kiln: Stack "wrong" has invalid config \(Pulumi\.wrong\.yaml\):\n {2}- kiln:minSize \(9\) is above kiln:maxSize \(5\)/);
    const broken = await kiln(["eta", "--stack", "broken", "--stack-dir", dir, "--backlog", "1", "--rate", "1"]);
    assert.equal(broken.code, 78);
    assert.match(broken.err, /^kiln: .*Pulumi\.broken\.yaml:\d+:\d+: /);
  });

  it("runs as `npm run kiln` and as the kiln bin, with the same exit codes", async () => {
    const run = (cmd: string, args: string[]) =>
      new Promise<{ code: number | null; out: string }>((resolve) => {
        const child = spawn(cmd, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
        let out = "";
        child.stdout!.on("data", (d) => (out += d));
        child.stderr!.on("data", (d) => (out += d));
        child.once("exit", (code) => resolve({ code, out }));
      });
    const viaNpm = await run("npm", ["run", "-s", "kiln", "--", "eta", "--stack", "prod", "--backlog", "256196", "--rate", "122", "--instances", "1"]);
    assert.equal(viaNpm.code, 0, viaNpm.out);
    assert.match(viaNpm.out, /done in +35 h 00 min \(35\.0 h\)/);
    assert.doesNotMatch(viaNpm.out, /NodeVersionSupportWarning/);
    const viaBin = await run(process.execPath, [path.join(ROOT, "bin", "kiln.js"), "status"]);
    assert.equal(viaBin.code, 2);
  });
});
