import { strict as assert } from "node:assert";
import { ACCOUNT, assertActionsExist, decide as decideIn, documentedPolicy, REGION, sdkCalls, SESSION_MANAGER_FILES, USER } from "../support/iam-policy";

/**
 * The policy docs/bake.md gives whoever bakes with sshInterface session_manager, evaluated as AWS
 * would (iam-simulate): every IAM and SSM call the Session Manager steps make is allowed, on the
 * resource it is made on, and their neighbours are not. The calls are read from the steps' code, so a
 * call added there without its permission in the documented policy fails here.
 */
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

describe("the documented policy for baking over Session Manager (iam-simulate)", () => {
  const policy = documentedPolicy("**Permissions for Session Manager**");
  const decide = (action: string, resource: string, context: Record<string, string> = CONTEXT) => decideIn(policy, action, resource, context);

  it("allows every IAM and SSM call the Session Manager steps make, on its resource", async () => {
    const made = [...new Set(sdkCalls(SESSION_MANAGER_FILES).map((c) => c.action).filter((a) => /^(iam|ssm):/.test(a)))].sort();
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

  it("names only actions that exist (iam-data)", () => assertActionsExist(policy));
});
