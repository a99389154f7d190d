import * as pulumi from "@pulumi/pulumi";
import * as aws from "@pulumi/aws";
import { StackKeyScope, stackKeyPolicy } from "./stack-key-policy";

export interface StackKeyArgs {
  stack: string;
  scope: pulumi.Input<StackKeyScope>;
  tags: Record<string, string>;
}

/**
 * The stack's customer managed KMS key (see stackKeyPolicy for who may use it), rotated yearly,
 * with an alias that names the stack. It encrypts the worker's secret parameters and the alarm topic.
 */
export class StackKey extends pulumi.ComponentResource {
  readonly key: aws.kms.Key;
  readonly alias: aws.kms.Alias;

  constructor(name: string, args: StackKeyArgs, opts?: pulumi.ComponentResourceOptions) {
    super("kiln:security:StackKey", name, {}, opts);

    this.key = new aws.kms.Key(
      name,
      {
        description: `kiln ${args.stack}: the workers' secrets in SSM and the alarm topic`,
        enableKeyRotation: true,
        // The longest wait AWS offers: a key deleted by mistake takes every secret with it.
        deletionWindowInDays: 30,
        policy: pulumi.output(args.scope).apply((scope) => JSON.stringify(stackKeyPolicy(scope))),
        tags: args.tags,
      },
      { parent: this },
    );

    this.alias = new aws.kms.Alias(name, { name: `alias/kiln-${args.stack}`, targetKeyId: this.key.keyId }, { parent: this });

    this.registerOutputs({ keyArn: this.key.arn });
  }
}
