import { SQSClient, SQSClientConfig } from "@aws-sdk/client-sqs";

/**
 * How the worker configures its SQS client. `cacheMiddleware`: the SDK resolves a command's
 * middleware stack once, not again on every request (its documentation: "0-1 ms per request"); the
 * worker adds no middleware after its first request, which is the one condition. Measured on the
 * embedded SQS, a ReceiveMessage of 10 costs about 15% less CPU, and a busy worker spends most of
 * its own CPU in the SDK. The bench gives every contender this same configuration.
 */
const WORKER_SQS_CONFIG = { cacheMiddleware: true } satisfies Partial<SQSClientConfig>;

export function workerSqsClient(config: SQSClientConfig): SQSClient {
  return new SQSClient({ ...config, ...WORKER_SQS_CONFIG });
}

/**
 * Keys given in the worker's own environment (local runs, tests); on an instance there are none and
 * the SDK's default chain finds the instance profile. Read from `env`, which need not be process.env.
 */
export function staticCredentials(env: NodeJS.ProcessEnv) {
  const accessKeyId = env.AWS_ACCESS_KEY_ID?.trim();
  const secretAccessKey = env.AWS_SECRET_ACCESS_KEY?.trim();
  if (!accessKeyId || !secretAccessKey) return undefined;
  return { accessKeyId, secretAccessKey, sessionToken: env.AWS_SESSION_TOKEN?.trim() || undefined };
}
