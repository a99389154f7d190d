import { strict as assert } from "node:assert";
import type { BakeState } from "../../ami/state";
import { imageTags } from "../../ami/steps/create-image";
import { AL2023_PARAMETERS } from "../../ami/steps/resolve-base-image";
import { builderTags, TAG } from "../../ami/steps/tags";
import {
  ACCOUNT, assertActionsExist, assertConditionKeysApply, decide as decideIn, documentedPolicy, REGION, sdkCalls, SESSION_MANAGER_FILES,
} from "../support/iam-policy";

/**
 * The policy docs/bake.md's "Permissions for whoever bakes" gives, evaluated as AWS would
 * (iam-simulate): every call the bake's code makes (read from ami/, so a new call without its
 * permission fails here) is allowed on the resources EC2 authorizes it against, with the tags the code
 * writes; the same calls on what is not kiln's are not.
 */
const COPY_REGION = "eu-west-1";
const KEY = `arn:aws:kms:${REGION}:${ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`;
const ec2 = (type: string, id: string, region = REGION) =>
  type === "image" || type === "snapshot" ? `arn:aws:ec2:${region}::${type}/${id}` : `arn:aws:ec2:${region}:${ACCOUNT}:${type}/${id}`;
const INSTANCE = ec2("instance", "i-0123456789abcdef0");
const VOLUME = ec2("volume", "vol-0123456789abcdef0");
const KEY_PAIR = ec2("key-pair", "kiln-builder-20260101t000000z-abc123");
const GROUP = ec2("security-group", "sg-0123456789abcdef0");
const VPC = ec2("vpc", "vpc-0123456789abcdef0");
const SUBNET = ec2("subnet", "subnet-0123456789abcdef0");
const ENI = ec2("network-interface", "eni-0123456789abcdef0");
const BASE_IMAGE = ec2("image", "ami-0aaaaaaaaaaaaaaaa");
const IMAGE = ec2("image", "ami-0123456789abcdef0");
const SNAPSHOT = ec2("snapshot", "snap-0123456789abcdef0");
const COPY = ec2("image", "ami-0fedcba9876543210", COPY_REGION);
const COPY_SNAPSHOT = ec2("snapshot", "snap-0fedcba9876543210", COPY_REGION);

// The tags the code writes, for a stack with cost-allocation tags of its own.
const state = {
  buildId: "20260101t000000z-abc123", settings: { stack: "prod", tags: { CostCenter: "42" } }, imageName: "kiln-worker-prod-20260101T000000Z",
  contentHash: "c0ffee", gitCommit: "abc", baseImageId: "ami-0aaaaaaaaaaaaaaaa",
} as unknown as BakeState;
const as = (kind: "RequestTag" | "ResourceTag", tags: Record<string, string>) =>
  Object.fromEntries(Object.entries(tags).map(([k, v]) => [`aws:${kind}/${k}`, v]));
const BUILDER_NEW = { ...as("RequestTag", builderTags(state)), "aws:TagKeys": Object.keys(builderTags(state)) };
const BUILDER = as("ResourceTag", builderTags(state));
const IMAGE_NEW = as("RequestTag", imageTags(state));
const KILN_IMAGE = as("ResourceTag", imageTags(state));
const COPY_TAGS = { ...imageTags(state), [TAG.sourceImage]: "ami-0123456789abcdef0" };
const COPY_NEW = as("RequestTag", COPY_TAGS);
const KILN_COPY = as("ResourceTag", COPY_TAGS);
const VIA_EC2 = { "kms:ViaService": `ec2.${REGION}.amazonaws.com` };
/** A key is used only as its key policy allows: AWS's default one, which lets IAM policies of the account grant it. */
const DEFAULT_KEY_POLICY = {
  Version: "2012-10-17",
  Statement: [{ Sid: "Enable IAM User Permissions", Effect: "Allow", Principal: { AWS: `arn:aws:iam::${ACCOUNT}:root` }, Action: "kms:*", Resource: "*" }],
};

type Context = Record<string, string | string[]>;
/** What EC2 authorizes each call against, with the request's and the resource's tags; a call missing here fails the test. */
const CALLS: Record<string, [string, Context][]> = {
  ...Object.fromEntries(
    ["DescribeRegions", "DescribeSubnets", "DescribeVpcs", "DescribeInstanceTypes", "DescribeImages", "DescribeSnapshots", "DescribeInstances",
     "DescribeKeyPairs", "DescribeSecurityGroups", "DescribeLaunchTemplates", "DescribeLaunchTemplateVersions"].map((op) => [`ec2:${op}`, [["*", {}]]]),
  ),
  "ec2:CreateKeyPair": [[KEY_PAIR, BUILDER_NEW]],
  "ec2:CreateSecurityGroup": [[GROUP, BUILDER_NEW], [VPC, BUILDER_NEW]],
  "ec2:AuthorizeSecurityGroupIngress": [[GROUP, BUILDER]],
  "ec2:DeleteSecurityGroup": [[GROUP, BUILDER]],
  "ec2:DeleteKeyPair": [[KEY_PAIR, BUILDER]],
  // run-builder asks for HttpTokens "required" and an encrypted root volume.
  "ec2:RunInstances": [
    [INSTANCE, { ...BUILDER_NEW, "ec2:MetadataHttpTokens": "required" }],
    [VOLUME, { ...BUILDER_NEW, "ec2:Encrypted": "true" }],
    [KEY_PAIR, { ...BUILDER_NEW, ...BUILDER }],
    [GROUP, { ...BUILDER_NEW, ...BUILDER }],
    [BASE_IMAGE, BUILDER_NEW], [SUBNET, BUILDER_NEW], [ENI, BUILDER_NEW],
  ],
  "ec2:StopInstances": [[INSTANCE, BUILDER]],
  "ec2:TerminateInstances": [[INSTANCE, BUILDER]],
  "ec2:CreateImage": [[INSTANCE, { ...IMAGE_NEW, ...BUILDER }], [IMAGE, IMAGE_NEW], [SNAPSHOT, IMAGE_NEW]],
  "ec2:CopyImage": [[IMAGE, COPY_NEW], [COPY, COPY_NEW], [COPY_SNAPSHOT, COPY_NEW]],
  // The kiln:complete mark, the copy's tags again, a copy's snapshots.
  "ec2:CreateTags": [
    [IMAGE, { ...KILN_IMAGE, "aws:RequestTag/kiln:complete": "true" }], [COPY, { ...KILN_COPY, ...COPY_NEW }], [COPY_SNAPSHOT, { ...KILN_COPY, ...COPY_NEW }],
  ],
  "ec2:ModifyImageAttribute": [[IMAGE, KILN_IMAGE], [COPY, KILN_COPY]],
  "ec2:DeregisterImage": [[IMAGE, KILN_IMAGE], [COPY, KILN_COPY]],
  "ec2:DeleteSnapshot": [[SNAPSHOT, KILN_IMAGE], [COPY_SNAPSHOT, KILN_COPY]],
};

/** What EC2 asks for on the baker's behalf: tags written on create, and with kmsKeyId the key's use by EBS. */
const TAGGED_ON_CREATE: Record<string, [string, Context][]> = {
  RunInstances: [[INSTANCE, BUILDER_NEW], [VOLUME, BUILDER_NEW]],
  CreateKeyPair: [[KEY_PAIR, BUILDER_NEW]],
  CreateSecurityGroup: [[GROUP, BUILDER_NEW]],
  CreateImage: [[IMAGE, IMAGE_NEW], [SNAPSHOT, IMAGE_NEW]],
  CopyImage: [[COPY, COPY_NEW], [COPY_SNAPSHOT, COPY_NEW]],
};
const KMS: [string, Context][] = [
  ...["kms:DescribeKey", "kms:Decrypt", "kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncryptFrom", "kms:ReEncryptTo"].map((a): [string, Context] => [a, VIA_EC2]),
  ["kms:CreateGrant", { ...VIA_EC2, "kms:GrantIsForAWSResource": "true" }],
];

describe("the documented policy for whoever bakes (iam-simulate)", () => {
  const policy = documentedPolicy("## Permissions for whoever bakes", { KEY_ID: KEY.split("/")[1] });
  const decide = (action: string, resource: string, context: Context) =>
    decideIn(policy, action, resource, context, resource.startsWith("arn:aws:kms:") ? DEFAULT_KEY_POLICY : undefined);
  // IAM and SSM calls of the Session Manager steps are the other policy's (baker-policy.test.ts).
  const made = sdkCalls().filter((c) => !(SESSION_MANAGER_FILES.includes(c.file) && /^(iam|ssm):/.test(c.action)));

  it("allows every call the bake makes, on each resource EC2 authorizes it against", async () => {
    const actions = [...new Set(made.map((c) => c.action))].sort();
    assert.ok(actions.includes("ec2:RunInstances") && actions.includes("ec2:CopyImage") && actions.includes("ec2:DescribeLaunchTemplates"), actions.join(" "));
    for (const action of actions) assert.ok(CALLS[action] || action === "ssm:GetParameter", `${action} is called (${made.find((c) => c.action === action)!.file}): document it and say here what it is authorized against`);
    for (const [action, uses] of Object.entries(CALLS)) {
      assert.ok(actions.includes(action), `${action} is no longer called: take it out of the policy`);
      for (const [resource, context] of uses) assert.equal(await decide(action, resource, context), "Allowed", `${action} on ${resource}`);
    }
  });

  it("allows the tags each call writes on create, and only those calls", async () => {
    const tagging = [...new Set(made.filter((c) => /\bTagSpecifications\s*:/.test(c.args)).map((c) => c.action.split(":")[1]))].sort();
    assert.deepEqual(tagging, Object.keys(TAGGED_ON_CREATE).sort(), "the calls that tag on create");
    for (const [createAction, uses] of Object.entries(TAGGED_ON_CREATE)) {
      for (const [resource, context] of uses) {
        assert.equal(await decide("ec2:CreateTags", resource, { ...context, "ec2:CreateAction": createAction }), "Allowed", `${createAction} tags ${resource}`);
      }
    }
  });

  it("lets EC2 use the image's KMS key on the baker's behalf, and no one use it directly", async () => {
    for (const [action, context] of KMS) {
      assert.equal(await decide(action, KEY, context), "Allowed", action);
      assert.equal(await decide(action, KEY, {}), "ImplicitlyDenied", `${action} outside EC2`);
    }
    assert.equal(await decide("kms:CreateGrant", KEY, { ...VIA_EC2, "kms:GrantIsForAWSResource": "false" }), "ImplicitlyDenied", "a grant for a person");
    assert.equal(await decide("kms:Decrypt", `arn:aws:kms:${REGION}:${ACCOUNT}:key/another`, VIA_EC2), "ImplicitlyDenied", "another key");
  });

  it("allows nothing on what is not kiln's: other instances, groups, key pairs, images and snapshots", async () => {
    const denied: [string, string, Context, string][] = [
      ["ec2:TerminateInstances", INSTANCE, {}, "an instance without kiln:builder"],
      ["ec2:StopInstances", INSTANCE, { "aws:ResourceTag/kiln:builder": "false" }, "kiln:builder=false"],
      ["ec2:CreateImage", INSTANCE, IMAGE_NEW, "an image of an instance that is no builder"],
      ["ec2:DeleteSecurityGroup", GROUP, {}, "another group"],
      ["ec2:AuthorizeSecurityGroupIngress", GROUP, {}, "opening another group"],
      ["ec2:DeleteKeyPair", KEY_PAIR, {}, "another key pair"],
      ["ec2:CreateKeyPair", ec2("key-pair", "deploy"), BUILDER_NEW, "a key pair by another name"],
      ["ec2:RunInstances", INSTANCE, BUILDER_NEW, "an instance that allows IMDSv1"],
      ["ec2:RunInstances", INSTANCE, { "ec2:MetadataHttpTokens": "required" }, "an untagged instance"],
      ["ec2:RunInstances", VOLUME, { ...BUILDER_NEW, "ec2:Encrypted": "false" }, "an unencrypted volume"],
      ["ec2:RunInstances", GROUP, BUILDER_NEW, "launching into another group"],
      ["ec2:CreateTags", INSTANCE, BUILDER_NEW, "making an existing instance a builder"],
      ["ec2:CreateTags", IMAGE, IMAGE_NEW, "making an existing image kiln's"],
      ["ec2:CreateTags", SNAPSHOT, { ...IMAGE_NEW, "ec2:CreateAction": "CreateSnapshot" }, "tags on a snapshot kiln does not make"],
      ["ec2:DeregisterImage", IMAGE, {}, "an image that is not kiln's"],
      ["ec2:ModifyImageAttribute", COPY, { "aws:ResourceTag/ManagedBy": "terraform" }, "sharing another image"],
      ["ec2:DeleteSnapshot", SNAPSHOT, {}, "a snapshot that is not kiln's"],
      ["ec2:CreateImage", IMAGE, {}, "an untagged image"],
      ["ec2:CopyImage", COPY, {}, "an untagged copy"],
      ["ec2:RunInstances", ec2("image", "ami-0aaaaaaaaaaaaaaaa", COPY_REGION), BUILDER_NEW, "a builder in another region"],
    ];
    for (const [action, resource, context, what] of denied) assert.equal(await decide(action, resource, context), "ImplicitlyDenied", what);
  });

  it("reads AL2023's parameter, and no other, as written", () => {
    // Public parameters' ARNs have no account, which iam-simulate cannot classify: the statement is checked as written.
    const statements = policy.Statement.filter((st) => [st.Action].flat().includes("ssm:GetParameter"));
    assert.deepEqual(statements.map((st) => [[st.Resource].flat(), st.Condition]), [[[`arn:aws:ssm:${REGION}::parameter/aws/service/ami-amazon-linux-latest/*`], undefined]]);
    for (const name of Object.values(AL2023_PARAMETERS)) assert.ok(name.startsWith("/aws/service/ami-amazon-linux-latest/"), name);
  });

  it("names only actions that exist, with condition keys each action takes (iam-data)", async () => {
    await assertActionsExist(policy);
    await assertConditionKeysApply(policy);
  });
});
