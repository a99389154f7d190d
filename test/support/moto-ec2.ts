import { EC2Client } from "@aws-sdk/client-ec2";
import { IAMClient } from "@aws-sdk/client-iam";
import { SSMClient } from "@aws-sdk/client-ssm";
import type { BakeClients } from "../../ami/aws-clients";
import { bakeClientOptions } from "../../ami/aws-clients";
import { Moto, MOTO_REGION } from "./moto";

/** Every request a client sent: operation name and input, in order. */
export interface SentCall {
  region: string;
  operation: string;
  input: Record<string, unknown>;
}

/**
 * The bake's clients against moto, with the bake's own HTTP handler (request timeout, step signal),
 * recording every call, and filling two gaps of moto 5.2.1 that AWS does not have: it answers 500 to
 * a snapshot TagSpecification on CreateImage (the request goes without it; kiln then tags the
 * snapshots itself, as it does for any that come out untagged), and it accepts ImdsSupport on
 * ModifyImageAttribute but never reports it (DescribeImages is given it back).
 */
export function motoClients(
  moto: Moto,
  opts: { requestTimeoutSeconds?: number } = {},
): Required<BakeClients> & { sent: SentCall[]; failNext(operation: string, error: Error, region?: string): void } {
  const sent: SentCall[] = [];
  const faults: { operation: string; region?: string; error: Error }[] = [];
  const imds = new Set<string>();
  const options = bakeClientOptions(opts.requestTimeoutSeconds ?? 10);
  const ec2s = new Map<string, EC2Client>();
  const ec2In = (region: string) => {
    if (!ec2s.has(region)) {
      const client = new EC2Client({ ...moto.client(region), ...options });
      client.middlewareStack.add(
        (next, context) => async (args) => {
          const operation = (context.commandName ?? "").replace(/Command$/, "");
          const input = args.input as Record<string, unknown>;
          sent.push({ region, operation, input: structuredClone(input) });
          const fault = faults.findIndex((f) => f.operation === operation && (!f.region || f.region === region));
          if (fault >= 0) throw faults.splice(fault, 1)[0].error;
          if (operation === "CreateImage" && Array.isArray(input.TagSpecifications)) {
            input.TagSpecifications = (input.TagSpecifications as { ResourceType: string }[]).filter((t) => t.ResourceType !== "snapshot");
          }
          const result = await next(args);
          if (operation === "ModifyImageAttribute" && (input.ImdsSupport as { Value?: string })?.Value === "v2.0") imds.add(input.ImageId as string);
          if (operation === "DescribeImages") {
            for (const image of (result.output as { Images?: { ImageId?: string; ImdsSupport?: string }[] }).Images ?? []) {
              if (image.ImageId && imds.has(image.ImageId)) image.ImdsSupport = "v2.0";
            }
          }
          return result;
        },
        { step: "initialize", name: "kilnMotoGaps" },
      );
      ec2s.set(region, client);
    }
    return ec2s.get(region)!;
  };
  const iam = new IAMClient({ ...moto.client(), ...options });
  iam.middlewareStack.add(
    (next, context) => async (args) => {
      sent.push({ region: "global", operation: (context.commandName ?? "").replace(/Command$/, ""), input: structuredClone(args.input as Record<string, unknown>) });
      return next(args);
    },
    { step: "initialize", name: "kilnRecord" },
  );
  return {
    ec2: ec2In(MOTO_REGION),
    ssm: new SSMClient({ ...moto.client(), ...options }),
    iam,
    ec2In,
    sent,
    failNext: (operation, error, region) => void faults.push({ operation, error, region }),
  };
}
