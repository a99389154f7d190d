import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { CONFIG_ERROR_EXIT, StackFileError } from "../../infra/config-errors";
import { parseStackFileText } from "../../infra/stack-file";
import { parseStackConfig } from "../../infra/config";
import { closest } from "../../infra/did-you-mean";
import { EXIT } from "../../worker/contract";
import { REPO } from "../support/pulumi-harness";

const PROD = fs.readFileSync(path.join(REPO, "Pulumi.prod.yaml"), "utf8");

function fileError(text: string): StackFileError {
  try {
    parseStackFileText(text, "/somewhere/Pulumi.prod.yaml", "prod");
  } catch (e) {
    assert.ok(e instanceof StackFileError, String(e));
    return e;
  }
  assert.fail("the text was accepted");
}

describe("a stack file that is not even a stack file", () => {
  const broken: [string, string, string][] = [
    ["a key indented one space too far", "config:\n  aws:region: ap-northeast-1\n   kiln:minSize: 1\n", "Pulumi.prod.yaml:2:15: Nested mappings are not allowed in compact mappings"],
    ["an unclosed list", "config:\n  kiln:subnetIds: [subnet-0a11b22c33d44e55f\n", "Pulumi.prod.yaml:3:1: Flow sequence in block collection must be sufficiently indented and end with a ]"],
    ["a key given twice", "config:\n  kiln:minSize: 1\n  kiln:minSize: 2\n", "Pulumi.prod.yaml:3:3: Map keys must be unique"],
    ["a tab for indentation", "config:\n\tkiln:minSize: 1\n", "Pulumi.prod.yaml:2:1: Tabs are not allowed as indentation"],
    ["a list at the top", "- config\n", "Pulumi.prod.yaml:1:1: a stack file is a map with a config: key"],
    ["a config: that is not a map", "config: minSize=1\n", "Pulumi.prod.yaml:1:9: config: must be a map of namespace:key: value"],
  ];
  for (const [what, text, line] of broken) {
    it(`reports ${what} as one line: file, line, column, what`, () => {
      const e = fileError(text);
      assert.equal(e.message, line);
      assert.deepEqual(e.problems, [line]);
    });
  }

  it("reads an empty config as no keys, and a stack file's secure: values as secret, each by its path", () => {
    assert.deepEqual(parseStackFileText("config:\n", "Pulumi.x.yaml", "x").values, {});
    const raw = parseStackFileText(
      "config:\n  kiln:secretEnv:\n    A: {secure: v1:x}\n    B: plain\n  kiln:subnetIds: [subnet-0a11b22c33d44e55f]\n",
      "Pulumi.x.yaml",
      "x",
    );
    assert.deepEqual([...raw.secretKeys], ["kiln:secretEnv"]);
    assert.deepEqual(Object.fromEntries(raw.secretLeaves!), {
      "kiln:secretEnv.A": true,
      "kiln:secretEnv.B": false,
      "kiln:subnetIds[0]": false,
    });
  });

  it("names a secret found in kiln:env, and a plaintext one beside secrets in kiln:secretEnv, by their keys", () => {
    const text =
      PROD +
      "  kiln:secretEnv:\n    OPENSEARCH_PASSWORD:\n      secure: v1:abc\n    API_TOKEN: plain-token\n" +
      "  kiln:tags2: x\n";
    const raw = parseStackFileText(text.replace("    OPENSEARCH_INDEX: files\n", "    OPENSEARCH_INDEX: files\n    OPENSEARCH_USER:\n      secure: v1:def\n"), "Pulumi.prod.yaml", "prod");
    let problems: string[] = [];
    try {
      parseStackConfig("prod", raw);
    } catch (e) {
      problems = (e as { problems: string[] }).problems;
    }
    assert.ok(problems.includes("kiln:secretEnv.API_TOKEN is plaintext: set it with `pulumi config set --secret --path 'kiln:secretEnv.API_TOKEN' ... --stack prod`, so the stack file keeps only ciphertext"), problems.join("\n"));
    assert.ok(problems.includes("kiln:env.OPENSEARCH_USER is a secret: secrets belong in kiln:secretEnv; move it there with `pulumi config set --secret --path 'kiln:secretEnv.OPENSEARCH_USER' ... --stack prod`"), problems.join("\n"));
    assert.ok(!problems.some((p) => p.includes("OPENSEARCH_PASSWORD")), "the secret one is fine");
    assert.ok(!problems.some((p) => p.startsWith("kiln:env holds")), "no vaguer duplicate of the named one");
    assert.ok(problems.some((p) => p.startsWith("kiln:tags2 is not a kiln setting: did you mean kiln:tags?")), "the rest of the file in the same pass");
  });
});

describe("the same exit code and the same text from every command that reads a stack file", function () {
  this.timeout(60_000);
  let tree: string;

  /**
   * A copy of the project whose stack files a test may break: the code is linked, and node keeps the
   * links as paths, so each command finds its stack files here and not in the repository.
   */
  before(() => {
    tree = fs.mkdtempSync(path.join(os.tmpdir(), "kiln-commands-"));
    for (const f of ["ami", "bin", "infra", "local", "worker", "node_modules", "package.json", "tsconfig.json", "Pulumi.yaml"]) {
      fs.symlinkSync(path.join(REPO, f), path.join(tree, f));
    }
  });
  after(() => fs.rmSync(tree, { recursive: true, force: true }));

  const run = (script: string, ...args: string[]) => {
    const r = spawnSync(process.execPath, ["--preserve-symlinks", "--preserve-symlinks-main", "--require", require.resolve("tsx/cjs"), script, ...args], {
      cwd: tree,
      encoding: "utf8",
      // No AWS: a stack file error must stop the command before it needs any.
      env: { PATH: process.env.PATH, HOME: tree, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true", AWS_EC2_METADATA_DISABLED: "true" },
      timeout: 30_000,
    });
    return { code: r.status, stderr: r.stderr };
  };
  const commands: [string, string, string[]][] = [
    ["bake-ami", "ami/cli.ts", ["--stack", "prod", "--dry-run"]],
    ["kiln local", "local/cli.ts", ["--stack", "prod", "--messages", "1"]],
  ];

  it("is EX_CONFIG, the worker's own configuration-error exit", () => {
    assert.equal(CONFIG_ERROR_EXIT, EXIT.CONFIG_ERROR);
  });

  for (const [name, script, args] of commands) {
    it(`${name}: a YAML syntax error is one line naming file, line and column, exit 78`, () => {
      fs.writeFileSync(path.join(tree, "Pulumi.prod.yaml"), PROD.replace("  kiln:minSize: 1\n", "  kiln:minSize: 1\n   kiln:oops: 2\n"));
      const { code, stderr } = run(script, ...args);
      assert.equal(code, CONFIG_ERROR_EXIT, stderr);
      const lines = stderr.trim().split("\n");
      // The over-indented key makes the value above it (column 17 of "  kiln:minSize: 1") a map.
      const line = PROD.split("\n").findIndex((l) => l === "  kiln:minSize: 1") + 1;
      assert.deepEqual(lines, [`${name}: Pulumi.prod.yaml:${line}:17: Nested mappings are not allowed in compact mappings`]);
    });

    it(`${name}: invalid values are every problem at once, exit 78, no stack trace`, () => {
      fs.writeFileSync(path.join(tree, "Pulumi.prod.yaml"), PROD.replace("kiln:minSize: 1", "kiln:minSize: 9").replace("kiln:processingTimeout: 180", "kiln:processingTimeout: 400"));
      const { code, stderr } = run(script, ...args);
      assert.equal(code, CONFIG_ERROR_EXIT, stderr);
      assert.match(stderr, new RegExp(`^${name}: Stack "prod" has invalid config \\(Pulumi.prod.yaml\\):\n`));
      assert.match(stderr, /^ {2}- kiln:minSize \(9\) is above kiln:maxSize \(5\)/m);
      assert.match(stderr, /^ {2}- kiln:visibilityTimeout \(300\) must be above kiln:processingTimeout \(400\)/m);
      assert.doesNotMatch(stderr, /^\s+at /m);
    });
  }
});

describe("did you mean", () => {
  it("suggests the near name, the name said longer or shorter, and nothing for a stranger", () => {
    const known = ["instanceType", "subnetId", "baseImage", "sshCidr", "sshUser", "keep", "appDir", "tags"];
    assert.equal(closest("subnetID", known), "subnetId");
    assert.equal(closest("sshUsr", known), "sshUser");
    assert.equal(closest("keepImages", known), "keep");
    assert.equal(closest("subnet", known), "subnetId");
    assert.equal(closest("frobnicate", known), undefined);
  });
});
