import { AutoScalingServiceException } from "@aws-sdk/client-auto-scaling";
import { CloudWatchServiceException } from "@aws-sdk/client-cloudwatch";
import { SSMServiceException } from "@aws-sdk/client-ssm";

const SERVICE_EXCEPTIONS = {
  ssm: SSMServiceException,
  cloudwatch: CloudWatchServiceException,
  autoscaling: AutoScalingServiceException,
};

export type FakeService = keyof typeof SERVICE_EXCEPTIONS;

/**
 * An error shaped like the one the real client throws for an AWS error response: the service's
 * exception class, the error code as `name`, `$fault` and the HTTP status in `$metadata`. For modeled
 * errors, the client's own classes work too (`new ThrottlingException({...})` from client-ssm).
 */
export function awsError(service: FakeService, name: string, message: string, status = 400): Error {
  const Exception = SERVICE_EXCEPTIONS[service];
  return new Exception({ name, message, $fault: status >= 500 ? "server" : "client", $metadata: { httpStatusCode: status } });
}

/** What the SDK throws when it cannot reach the endpoint at all (no route, DNS not up yet). */
export function networkError(code = "ECONNREFUSED", host = "ssm.ap-northeast-1.amazonaws.com"): Error {
  const e = new Error(`connect ${code} ${host}:443`) as Error & { code: string };
  e.code = code;
  return e;
}
