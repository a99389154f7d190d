import { EC2Client } from "@aws-sdk/client-ec2";
import { IAMClient } from "@aws-sdk/client-iam";
import { SSMClient } from "@aws-sdk/client-ssm";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import { callSignal } from "./call-signal";

/** Seconds one AWS request may go unanswered before it fails (and the SDK retries it). */
export const DEFAULT_REQUEST_TIMEOUT = 30;

type Request = Parameters<NodeHttpHandler["handle"]>[0];
type HttpHandlerOptions = NonNullable<Parameters<NodeHttpHandler["handle"]>[1]>;

/**
 * The SDK's Node handler with two things it lacks by default: a request timeout (without one, an
 * endpoint that accepts and never answers holds a call forever) and the abort signal of the running
 * step (call-signal.ts), so Ctrl-C ends the request in flight instead of waiting it out.
 */
export class BakeHttpHandler extends NodeHttpHandler {
  constructor(requestTimeoutMs: number) {
    // Without throwOnRequestTimeout the handler only logs a warning and goes on waiting.
    super({ requestTimeout: requestTimeoutMs, connectionTimeout: Math.min(requestTimeoutMs, 10_000), throwOnRequestTimeout: true });
  }

  override handle(request: Request, options: HttpHandlerOptions = {}) {
    const step = callSignal();
    const own = options.abortSignal as AbortSignal | undefined;
    const abortSignal = step && own ? AbortSignal.any([step, own]) : (step ?? own);
    return super.handle(request, { ...options, abortSignal });
  }
}

/** Client options every bake client gets: the handler above. Tests add their endpoint and credentials. */
export function bakeClientOptions(requestTimeoutSeconds = DEFAULT_REQUEST_TIMEOUT) {
  return { requestHandler: new BakeHttpHandler(requestTimeoutSeconds * 1000) };
}

/** The AWS clients a bake uses: EC2 and SSM in the stack's region, IAM, and EC2 in the regions images are copied to. */
export interface BakeClients {
  ec2: EC2Client;
  ssm: SSMClient;
  /** Session Manager's temporary instance profile; created on first use when absent. */
  iam?: IAMClient;
  /** EC2 in another region (copyRegions); default: a client like `ec2` in that region. */
  ec2In?(region: string): EC2Client;
}

export function bakeClients(region: string, requestTimeoutSeconds = DEFAULT_REQUEST_TIMEOUT): Required<BakeClients> {
  const opts = bakeClientOptions(requestTimeoutSeconds);
  const others = new Map<string, EC2Client>();
  return {
    ec2: new EC2Client({ region, ...opts }),
    ssm: new SSMClient({ region, ...opts }),
    iam: new IAMClient({ region, ...opts }),
    ec2In(other: string) {
      if (!others.has(other)) others.set(other, new EC2Client({ region: other, ...opts }));
      return others.get(other)!;
    },
  };
}
