import { createHash } from "node:crypto";
import { GetParametersByPathCommand } from "@aws-sdk/client-ssm";
import { awsCall } from "./call";
import type { AwsClients } from "./clients";

export interface ParameterVersion {
  name: string;
  type: string;
  version: number;
}

/**
 * The digest the stack puts in the launch template (infra/worker-environment.ts): SHA-256 over
 * "name type version" lines, the String parameters first, then the SecureString ones, each group
 * in the order of its variable names. SSM bumps a parameter's version on every change, so a
 * parameter changed outside `pulumi up` makes the live digest differ from the template's.
 */
export function envDigest(prefix: string, params: ParameterVersion[]): string {
  const variable = (p: ParameterVersion) => p.name.slice(prefix.length);
  const byName = (a: ParameterVersion, b: ParameterVersion) => variable(a).localeCompare(variable(b));
  const ordered = [...params.filter((p) => p.type !== "SecureString").sort(byName), ...params.filter((p) => p.type === "SecureString").sort(byName)];
  return createHash("sha256")
    .update(ordered.map((p) => `${p.name} ${p.type} ${p.version}`).join("\n"))
    .digest("hex");
}

/** The stack's parameters as SSM has them now: names, types and versions, never values. */
export async function liveParameters(c: AwsClients, prefix: string): Promise<ParameterVersion[]> {
  const out: ParameterVersion[] = [];
  let NextToken: string | undefined;
  do {
    const page = await awsCall(`listing the parameters under ${prefix}`, () =>
      // WithDecryption false: the digest needs versions only, and the operator need not hold the key.
      c.ssm.send(new GetParametersByPathCommand({ Path: prefix, Recursive: false, WithDecryption: false, NextToken })),
    );
    for (const p of page.Parameters ?? []) out.push({ name: p.Name!, type: p.Type!, version: p.Version! });
    NextToken = page.NextToken;
  } while (NextToken);
  return out;
}


/** KILN_ENV_DIGEST from a launch template version's user data (infra/user-data.ts). */
export function digestInUserData(userData: string | undefined): string | undefined {
  return userData ? /^\s*KILN_ENV_DIGEST=([0-9a-f]{64})\s*$/m.exec(userData)?.[1] : undefined;
}
