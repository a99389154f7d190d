import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import * as path from "node:path";
import { REPO } from "../support/pulumi-harness";

/** `npm run bake-ami` as a user types it: the real process, its output and exit code. */
function bakeAmi(...args: string[]) {
  const r = spawnSync(process.execPath, ["--require", require.resolve("tsx/cjs"), path.join(REPO, "ami", "cli.ts"), ...args], {
    encoding: "utf8",
    env: { PATH: process.env.PATH, HOME: process.env.HOME, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("npm run bake-ami (the command)", function () {
  this.timeout(30_000);

  it("--help documents every flag it accepts", () => {
    const { code, stdout } = bakeAmi("--help");
    assert.equal(code, 0);
    for (const flag of ["--stack", "--dry-run", "--force", "--on-error", "--reap", "--json", "--manifest", "--region", "--instance-type",
      "--subnet", "--base-image", "--ssh-cidr", "--ssh-user", "--keep", "--target ssh", "--host", "--port", "--user", "--key",
      "--ssh-interface", "--ssh-timeout", "--instance-timeout", "--image-timeout", "--request-timeout"]) {
      assert.ok(stdout.includes(flag), `${flag} is documented`);
    }
  });

  const refused: [string[], RegExp][] = [
    [[], /--stack is required/],
    [["--stack", "prod", "--bogus"], /^bake-ami: unknown flag --bogus\n/],
    // A mistyped flag gets the one it most likely meant, as a mistyped stack setting does.
    [["--stack", "prod", "--dryrun"], /unknown flag --dryrun: did you mean --dry-run\?/],
    [["--stack", "prod", "--ssh_interface", "private_ip"], /unknown flag --ssh_interface: did you mean --ssh-interface\?/],
    [["--stack", "prod", "--sshtimeout=60"], /unknown flag --sshtimeout: did you mean --ssh-timeout\?/],
    [["-stack", "prod"], /unknown flag -stack: did you mean --stack\?/],
    [["--stack", "prod", "--on-error=abrt"], /--on-error must be cleanup or abort \(got "abrt"\): did you mean abort\?/],
    [["--stack", "prod", "--ssh-interface", "session-manager"], /--ssh-interface must be public_ip, private_ip, session_manager \(got "session-manager"\): did you mean session_manager\?/],
    [["--stack", "prod", "--on-error=retry"], /--on-error must be cleanup or abort \(got "retry"\)/],
    [["--stack", "prod", "--keep", "0"], /--keep must be a whole number from 1 to 100 \(got "0"\)/],
    [["--stack", "prod", "--target", "ssh"], /--target ssh needs --host/],
    [["--stack", "prod", "--target", "ssh", "--host", "h", "--key", "/nonexistent"], /--key \/nonexistent: no such file/],
    [["--stack", "prod", "--host", "h"], /--host only applies with --target ssh/],
    [["--stack", "prod", "--ssh-interface", "ssm"], /--ssh-interface must be public_ip, private_ip, session_manager \(got "ssm"\)/],
    [["--stack", "prod", "--ssh-timeout", "5"], /--ssh-timeout must be a whole number from 10 to 7200 \(got "5"\)/],
    [["--stack", "staging"], /No stack "staging": .*Pulumi\.staging\.yaml does not exist \(stacks here: dev, prod\)/],
  ];
  for (const [args, message] of refused) {
    it(`refuses ${args.join(" ") || "no arguments"} with one clear line and exit 2, touching no cloud`, () => {
      const { code, stderr } = bakeAmi(...args);
      assert.equal(code, 2, stderr);
      assert.match(stderr, message);
    });
  }
});
