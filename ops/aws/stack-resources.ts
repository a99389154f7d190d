import { execFile } from "node:child_process";
import { GetQueueAttributesCommand, GetQueueUrlCommand } from "@aws-sdk/client-sqs";
import { GetParameterCommand } from "@aws-sdk/client-ssm";
import { ssmPrefix } from "../../worker/contract";
import { NotFoundError } from "../exit";
import { awsCall, isAwsError } from "./call";
import type { AwsClients } from "./clients";

/**
 * The names kiln gives a stack's resources (index.ts): fixed, so an operator's command finds them
 * from the stack name alone. The queues are named by Pulumi with a random suffix; their URL is in
 * the stack's SSM environment (SQS_QUEUE_URL), and the DLQ is the main queue's redrive target.
 */
export function stackNames(stack: string) {
  return {
    groupName: `kiln-${stack}-workers`,
    logGroupName: `/kiln/${stack}/worker`,
    ssmPrefix: ssmPrefix(stack),
    /** Every alarm the stack declares is named from `kiln-<stack>-`; AWS's own target tracking alarms are not. */
    alarmPrefix: `kiln-${stack}-`,
    dashboardName: `kiln-${stack}`,
  };
}

export interface StackQueues {
  url: string;
  arn: string;
  dlqUrl: string;
  dlqArn: string;
}

export function queueNameOf(urlOrArn: string): string {
  return urlOrArn.split(/[/:]/).pop()!;
}

/** Finds the stack's queue and DLQ; NotFoundError when the stack is not deployed where we look. */
export async function findStackQueues(c: AwsClients, stack: string, outputs = pulumiOutputs): Promise<StackQueues> {
  const names = stackNames(stack);
  const parameter = `${names.ssmPrefix}SQS_QUEUE_URL`;
  let url: string | undefined;
  try {
    url = (await c.ssm.send(new GetParameterCommand({ Name: parameter }))).Parameter?.Value;
  } catch (e) {
    if (!isAwsError(e, "ParameterNotFound")) {
      return awsCall(`reading ${parameter}`, () => Promise.reject(e));
    }
  }
  url ??= (await outputs(stack))?.queueUrl;
  if (!url) {
    throw new NotFoundError(
      `stack ${stack} is not deployed in ${c.settings.region}: no SSM parameter ${parameter} (and no \`pulumi stack output\`); ` +
        `deploy it with \`pulumi up --stack ${stack}\`, or check --region and the credentials' account`,
    );
  }
  const attrs = await awsCall(`reading the attributes of ${queueNameOf(url)}`, () =>
    c.sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ["QueueArn", "RedrivePolicy"] })),
  );
  const arn = attrs.Attributes?.QueueArn ?? "";
  const dlqArn = (JSON.parse(attrs.Attributes?.RedrivePolicy ?? "{}") as { deadLetterTargetArn?: string }).deadLetterTargetArn;
  if (!dlqArn) throw new NotFoundError(`the queue ${queueNameOf(url)} of stack ${stack} has no redrive policy, so no dead-letter queue: run \`pulumi up --stack ${stack}\``);
  const [, , , , account, dlqName] = dlqArn.split(":");
  const dlq = await awsCall(`finding the dead-letter queue ${dlqName}`, () =>
    c.sqs.send(new GetQueueUrlCommand({ QueueName: dlqName, QueueOwnerAWSAccountId: account })),
  );
  return { url, arn, dlqUrl: dlq.QueueUrl!, dlqArn };
}

/**
 * `pulumi stack output --json`, when the Pulumi CLI is here and logged in: the stack's outputs
 * name the queues even where the SSM parameter cannot be read. Undefined when it is not.
 */
export function pulumiOutputs(stack: string): Promise<Record<string, string> | undefined> {
  return new Promise((resolve) => {
    execFile("pulumi", ["stack", "output", "--json", "--stack", stack], { timeout: 30_000 }, (err, stdout) => {
      if (err) return resolve(undefined);
      try {
        resolve(JSON.parse(stdout) as Record<string, string>);
      } catch {
        resolve(undefined);
      }
    });
  });
}
