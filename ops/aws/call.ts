import { awsErrorCode } from "../../ami/aws-errors";
import { CallFailed } from "../exit";

export { awsErrorCode, isAwsError } from "../../ami/aws-errors";

const PERMISSION = "the credentials in use lack this permission: docs/ops.md lists what each command calls; use an operator role that has it (AWS_PROFILE, --profile)";
const CREDENTIALS = "AWS did not accept the credentials: check AWS_PROFILE (--profile) or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY";
const EXPIRED = "the session has expired: sign in again (aws sso login, or fresh keys)";
const THROTTLED = "AWS is throttling this account's API calls: wait a little and run it again";
const NETWORK = "cannot reach the AWS endpoint: check the network, any proxy (HTTPS_PROXY), the region (--region) and --endpoint-url";

const HINTS: Record<string, string> = {
  AccessDenied: PERMISSION,
  AccessDeniedException: PERMISSION,
  UnauthorizedOperation: PERMISSION,
  "AWS.SimpleQueueService.NonExistentQueue": "the queue does not exist: is the stack deployed in this region (--region)?",
  QueueDoesNotExist: "the queue does not exist: is the stack deployed in this region (--region)?",
  InvalidClientTokenId: CREDENTIALS,
  UnrecognizedClientException: CREDENTIALS,
  SignatureDoesNotMatch: `${CREDENTIALS}; and this machine's clock`,
  ExpiredToken: EXPIRED,
  ExpiredTokenException: EXPIRED,
  CredentialsProviderError: "no AWS credentials were found: set AWS_PROFILE or --profile (and sign in: aws sso login), or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
  Throttling: THROTTLED,
  ThrottlingException: THROTTLED,
  RequestThrottled: THROTTLED,
  ECONNREFUSED: NETWORK,
  ENOTFOUND: NETWORK,
  EAI_AGAIN: NETWORK,
  ETIMEDOUT: NETWORK,
  TimeoutError: NETWORK,
};

/** One AWS call, its failure turned into one line: what kiln was doing, AWS's code and message, what to do. */
export async function awsCall<T>(doing: string, call: () => Promise<T>, hints: Record<string, string> = {}): Promise<T> {
  try {
    return await call();
  } catch (e) {
    throw new CallFailed(describeAwsFailure(doing, e, hints));
  }
}

export function describeAwsFailure(doing: string, e: unknown, hints: Record<string, string> = {}): string {
  const code = awsErrorCode(e);
  const message = (e as Error)?.message ?? String(e);
  const hint = (code && (hints[code] ?? HINTS[code])) || "";
  return `${doing} failed: ${code && !message.includes(code) ? `${code}: ` : ""}${message}${hint ? ` (${hint})` : ""}`;
}
