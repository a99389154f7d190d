import { StepError } from "./step";

/**
 * The code of an AWS failure: a service error's name (`InvalidSubnetID.NotFound`), a network error's
 * code (`ENOTFOUND`), `CredentialsProviderError` when the SDK found no credentials.
 */
export function awsErrorCode(e: unknown): string | undefined {
  if (e instanceof StepError) return e.code;
  if (typeof e !== "object" || e === null) return undefined;
  const err = e as { name?: string; code?: unknown; Code?: unknown; $metadata?: unknown; $fault?: unknown };
  if ((err.$metadata !== undefined || err.$fault !== undefined) && err.name && err.name !== "Error") return err.name;
  if (typeof err.Code === "string") return err.Code;
  if (typeof err.code === "string") return err.code;
  if (err.name === "CredentialsProviderError" || err.name === "TimeoutError" || err.name === "AbortError") return err.name;
  return undefined;
}

/**
 * Throttling, AWS failing on its side, a request timeout or a dropped connection: worth asking again
 * while a wait still has time (the SDK's own three attempts are soon spent under throttling).
 */
const TRANSIENT = new Set([
  "RequestLimitExceeded", "Throttling", "ThrottlingException", "ThrottledException", "TooManyRequestsException", "EC2ThrottledException",
  "InternalError", "InternalFailure", "ServiceUnavailable", "Unavailable", "RequestTimeout", "RequestTimeoutException", "TimeoutError",
  "ECONNRESET", "ECONNREFUSED", "ETIMEDOUT", "EPIPE", "EAI_AGAIN", "ENOTFOUND", "EHOSTUNREACH", "ENETUNREACH",
]);

export function isTransientAwsError(e: unknown): boolean {
  const code = awsErrorCode(e);
  if (code !== undefined && TRANSIENT.has(code)) return true;
  const status = (e as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
  return status !== undefined && status >= 500;
}

export function isAwsError(e: unknown, ...codes: string[]): boolean {
  const code = awsErrorCode(e);
  return code !== undefined && codes.includes(code);
}

const PERMISSION =
  "the credentials in use lack this permission: grant the IAM user or role that bakes the policy in docs/bake.md, \"Permissions for whoever bakes\", or use other credentials (AWS_PROFILE)";
const CREDENTIALS = "AWS did not accept the credentials: check AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, and that the key is active";
const EXPIRED = "the session has expired: sign in again (aws sso login, or fresh keys) and check that this machine's clock is right";
const THROTTLED = "AWS is throttling this account's API calls: wait a minute, then bake again";
const AWS_SIDE = "AWS failed on its side: bake again in a few minutes";
const NETWORK = "cannot reach the AWS endpoint: check the network, any proxy (HTTPS_PROXY), and the stack's region";
const LEFT_BEHIND = "if a killed bake left builders behind, `npm run bake-ami -- --stack <stack> --reap` removes them";

/** What a user can do about each error code, whichever step hit it; a step may say more. */
const HINTS: Record<string, string> = {
  UnauthorizedOperation: PERMISSION,
  AccessDenied: PERMISSION,
  AccessDeniedException: PERMISSION,
  AuthFailure: `${CREDENTIALS}; also that the region is enabled for the account`,
  InvalidClientTokenId: CREDENTIALS,
  UnrecognizedClientException: CREDENTIALS,
  SignatureDoesNotMatch: `${CREDENTIALS}; and this machine's clock`,
  ExpiredToken: EXPIRED,
  ExpiredTokenException: EXPIRED,
  RequestExpired: EXPIRED,
  CredentialsProviderError: "no AWS credentials were found: set AWS_PROFILE (and sign in: aws sso login) or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
  OptInRequired: "the region is not enabled for this account: enable it (console: Account → AWS Regions) or bake in another region",
  RequestLimitExceeded: THROTTLED,
  Throttling: THROTTLED,
  ThrottlingException: THROTTLED,
  InternalError: AWS_SIDE,
  InternalFailure: AWS_SIDE,
  ServiceUnavailable: AWS_SIDE,
  Unavailable: AWS_SIDE,
  ECONNREFUSED: NETWORK,
  ECONNRESET: NETWORK,
  ENOTFOUND: NETWORK,
  EAI_AGAIN: NETWORK,
  ETIMEDOUT: NETWORK,
  TimeoutError: NETWORK,
  "InvalidSubnetID.NotFound": "no such subnet in this account and region: set kiln:bake.subnetId (default: the first of kiln:subnetIds) to one that exists",
  "InvalidSubnetID.Malformed": "set kiln:bake.subnetId to a subnet id such as subnet-0123456789abcdef0",
  "InvalidAMIID.NotFound": "check kiln:bake.baseImage: the image must exist in the stack's region and be visible to this account",
  "InvalidAMIID.Malformed": "set kiln:bake.baseImage to an AMI id (ami-...) or an SSM parameter path",
  "InvalidAMIID.Unavailable": "the base image is not available (deregistered or still pending): check kiln:bake.baseImage",
  ParameterNotFound: "no such SSM parameter in the stack's region: check kiln:bake.baseImage",
  InvalidInstanceType: "set kiln:bake.instanceType to an instance type offered in the stack's region",
  InsufficientInstanceCapacity:
    "AWS has no spare capacity of this instance type in the subnet's Availability Zone right now: bake again later, " +
    "or choose another kiln:bake.instanceType, or a kiln:bake.subnetId in another zone",
  InstanceLimitExceeded: "the account's instance quota is used up: terminate instances or request more (Service Quotas → Amazon EC2)",
  VcpuLimitExceeded: "the account's On-Demand vCPU quota for this family is used up: terminate instances or request more (Service Quotas → Amazon EC2)",
  Unsupported: "the instance type is not offered in the subnet's Availability Zone: choose another kiln:bake.instanceType or kiln:bake.subnetId",
  InvalidBlockDeviceMapping: "check kiln:bake.rootVolumeSize: it must be at least the base image's root volume size",
  InvalidParameterValue: "AWS rejected a value this bake sent: check kiln:bake (instanceType, baseImage, subnetId, sshCidr, rootVolumeSize, tags) against the message",
  InvalidParameterCombination: "AWS rejected a combination of settings: check kiln:bake against the message",
  "InvalidKeyPair.Duplicate": `a key pair of this build's name exists already; ${LEFT_BEHIND}`,
  "InvalidGroup.Duplicate": `a security group of this build's name exists already; ${LEFT_BEHIND}`,
  SecurityGroupLimitExceeded: `the VPC's security group quota is used up: delete unused groups or raise the quota; ${LEFT_BEHIND}`,
  ResourceLimitExceeded: `an account quota is used up: free some of the resource or raise the quota; ${LEFT_BEHIND}`,
  DependencyViolation: `something still uses it (usually a terminated builder's network interface, which AWS releases within minutes); ${LEFT_BEHIND} later`,
  "InvalidAMIName.Duplicate": "an image of this name exists already: bake again (the name carries the time), or deregister the old image",
  "InvalidAMIName.Malformed": "AMI names take 3 to 128 letters, digits, spaces and ( ) [ ] . / - ' @ _ only",
  IncorrectInstanceState: "the builder is not in the state this step expects: someone else, or its lifetime limit, may have stopped or terminated it",
  IncorrectState: "the builder is not in the state this step expects: someone else, or its lifetime limit, may have stopped or terminated it",
  "InvalidInstanceID.NotFound": "the builder is gone: someone else, or its lifetime limit, may have terminated it",
  "InvalidSnapshot.InUse": "another image uses this snapshot: deregister that image first",
  SnapshotCreationPerVolumeRateExceeded: THROTTLED,
};

export function hintFor(code: string | undefined): string | undefined {
  return code === undefined ? undefined : HINTS[code];
}

/**
 * Turns a failed AWS call into the error the user sees: the step, what was being done, the code, AWS's
 * own message and what to do (`hint` overrides the usual advice for the code).
 */
export function stepFailure(step: string, doing: string, e: unknown, hint?: string): StepError {
  if (e instanceof StepError) return e;
  const code = awsErrorCode(e);
  const message = e instanceof Error ? e.message : String(e);
  return new StepError(step, `${doing} failed${code ? ` (${code})` : ""}: ${message}`, code, hint ?? hintFor(code) ?? "see AWS's message above");
}

/** Runs one AWS call, turning its failure into a StepError of `step`. */
export async function awsCall<T>(step: string, doing: string, call: () => Promise<T>, hints: Record<string, string> = {}): Promise<T> {
  try {
    return await call();
  } catch (e) {
    const code = awsErrorCode(e);
    throw stepFailure(step, doing, e, code === undefined ? undefined : hints[code]);
  }
}
