import {
  GetParametersByPathCommandInput,
  GetParametersByPathCommandOutput,
  Parameter,
  ParameterType,
} from "@aws-sdk/client-ssm";
import { awsError } from "./errors";

interface StoredParameter {
  name: string;
  type: ParameterType;
  value: string;
  version: number;
  modified: Date;
}

/** SSM's hard limit for GetParametersByPath's MaxResults. */
const SSM_MAX_RESULTS = 10;

/**
 * SSM Parameter Store's state and its GetParametersByPath semantics: hierarchy matching, Recursive,
 * SecureString values that stay encrypted without WithDecryption, and pagination. The page size is
 * smaller than SSM's so tests with a handful of parameters still cross page boundaries.
 */
export class FakeParameterStore {
  private readonly params = new Map<string, StoredParameter>();

  constructor(
    private readonly pageSize = 3,
    private readonly region = "ap-northeast-1",
    private readonly account = "123456789012",
  ) {}

  put(name: string, value: string, type: ParameterType = "String"): void {
    if (!name.startsWith("/")) throw new Error(`fake SSM keeps hierarchical names only (got ${name})`);
    const old = this.params.get(name);
    this.params.set(name, { name, type, value, version: (old?.version ?? 0) + 1, modified: new Date() });
  }

  /** Puts NAME=value under `prefix` for each entry, as the Pulumi program does. */
  putAll(prefix: string, vars: Record<string, string>, type: ParameterType = "String"): void {
    for (const [k, v] of Object.entries(vars)) this.put(`${prefix.replace(/\/?$/, "/")}${k}`, v, type);
  }

  delete(name: string): void {
    this.params.delete(name);
  }

  get size(): number {
    return this.params.size;
  }

  getParametersByPath(input: GetParametersByPathCommandInput): Omit<GetParametersByPathCommandOutput, "$metadata"> {
    const path = input.Path ?? "";
    if (!path.startsWith("/") || /\/\//.test(path)) {
      throw awsError("ssm", "ValidationException", `The parameter doesn't meet the parameter name requirements: ${path}`);
    }
    if (input.MaxResults !== undefined && (input.MaxResults < 1 || input.MaxResults > SSM_MAX_RESULTS)) {
      throw awsError("ssm", "ValidationException", `1 validation error detected: Value '${input.MaxResults}' at 'maxResults' failed to satisfy constraint`);
    }
    const base = path.endsWith("/") ? path : `${path}/`;
    const matching = [...this.params.values()]
      .filter((p) => p.name.startsWith(base) && (input.Recursive || !p.name.slice(base.length).includes("/")))
      .sort((a, b) => a.name.localeCompare(b.name));

    const start = input.NextToken === undefined ? 0 : this.offsetOf(input.NextToken);
    const size = Math.min(this.pageSize, input.MaxResults ?? SSM_MAX_RESULTS);
    const page = matching.slice(start, start + size);
    const next = start + size < matching.length ? Buffer.from(`offset:${start + size}`).toString("base64") : undefined;
    return { Parameters: page.map((p) => this.describe(p, input.WithDecryption === true)), NextToken: next };
  }

  private offsetOf(token: string): number {
    const m = /^offset:(\d+)$/.exec(Buffer.from(token, "base64").toString());
    if (!m) throw awsError("ssm", "ValidationException", "The specified token is not valid.");
    return Number(m[1]);
  }

  private describe(p: StoredParameter, decrypt: boolean): Parameter {
    // Without decryption SSM returns the KMS ciphertext, base64: never the plaintext.
    const value = p.type === "SecureString" && !decrypt ? Buffer.from(`kms-ciphertext:${p.name}:${p.version}`).toString("base64") : p.value;
    return {
      Name: p.name,
      Type: p.type,
      Value: value,
      Version: p.version,
      LastModifiedDate: p.modified,
      ARN: `arn:aws:ssm:${this.region}:${this.account}:parameter${p.name}`,
      DataType: "text",
    };
  }
}
