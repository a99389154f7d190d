import { GetParametersByPathCommand, Parameter, SSMClient } from "@aws-sdk/client-ssm";
import { isEnvName } from "./env-file";

/** SSM's own character set for parameter paths; anything else is a typo in instance.env. */
const PATH = /^\/[A-Za-z0-9_.\-/]*$/;

/** The prefix with exactly one trailing slash, or undefined if it cannot be an SSM path. */
export function normalizePrefix(raw: string | undefined): string | undefined {
  const p = raw?.trim();
  if (!p || !PATH.test(p) || p.includes("//") || p === "/") return undefined;
  return p.endsWith("/") ? p : `${p}/`;
}

/** The stack's parameters are missing: not deployed yet, deleted, or the prefix is wrong. */
export class NoParametersError extends Error {
  constructor(readonly prefix: string) {
    super(`no parameters under ${prefix}`);
    this.name = "NoParametersError";
  }
}

export interface WorkerParameters {
  /** NAME → value for every /prefix/NAME, SecureStrings decrypted. */
  variables: Record<string, string>;
  /** Parameters below the prefix that cannot be an environment variable (nested paths, bad names). */
  skipped: string[];
}

/** SSM's largest page for GetParametersByPath. */
const PAGE_SIZE = 10;

/**
 * Every parameter under `prefix`, page by page. One read is all or nothing: a failure on any page
 * fails the whole read, so a retry starts over and never mixes two versions of the environment.
 */
export async function readWorkerParameters(ssm: SSMClient, prefix: string): Promise<WorkerParameters> {
  const found: Parameter[] = [];
  let NextToken: string | undefined;
  do {
    const page = await ssm.send(
      new GetParametersByPathCommand({
        // SSM names hierarchies without the trailing slash.
        Path: prefix.slice(0, -1),
        Recursive: true,
        WithDecryption: true,
        MaxResults: PAGE_SIZE,
        NextToken,
      }),
    );
    found.push(...(page.Parameters ?? []));
    NextToken = page.NextToken;
  } while (NextToken);

  const variables: Record<string, string> = {};
  const skipped: string[] = [];
  for (const p of found) {
    const name = p.Name?.startsWith(prefix) ? p.Name.slice(prefix.length) : undefined;
    if (name === undefined || !isEnvName(name)) skipped.push(p.Name ?? "(unnamed)");
    else variables[name] = p.Value ?? "";
  }
  if (Object.keys(variables).length === 0) throw new NoParametersError(prefix);
  return { variables, skipped };
}
