import { _InstanceType, DescribeImagesCommand, EC2Client, RunInstancesCommand, TerminateInstancesCommand } from "@aws-sdk/client-ec2";
import { awsCall, isAwsError } from "../aws-errors";
import { unabortable } from "../call-signal";
import type { BakeState } from "../state";
import { Step, StepError } from "../step";
import { builderTags, tagSpec } from "./tags";
import { instanceWaitOptions, throwIfAborted, waitForInstance, WaitOptions } from "./wait";

const NAME = "run-builder";

/**
 * cloud-config that ends the builder after its lifetime, whatever becomes of the bake that launched
 * it (SIGKILL, a lost laptop): poweroff, and shutdown behaviour `terminate` makes that a termination.
 * A transient systemd timer needs nothing but PID 1 this early in boot; `shutdown` (which needs logind)
 * is the fallback.
 */
export function builderUserData(lifetimeMinutes: number): string {
  const minutes = Math.max(1, Math.floor(lifetimeMinutes));
  return [
    "#cloud-config",
    "# kiln builder: ends itself if the bake that launched it dies without cleaning up",
    "bootcmd:",
    `  - systemd-run --unit=kiln-builder-lifetime --on-active=${minutes}min /usr/bin/systemctl poweroff || shutdown -h +${minutes} "kiln builder lifetime reached"`,
    "",
  ].join("\n");
}

/** Launches the builder: IMDSv2 only, encrypted root, self-terminating; waits until it runs. */
export const stepRunBuilder: Step<BakeState> = {
  name: NAME,
  title: "launch the builder instance",

  async run(state, ctx) {
    const { ec2 } = state.clients;
    const s = state.settings;
    const { baseImageId, keyPair, securityGroupId } = state;
    if (!baseImageId || !keyPair || !securityGroupId) {
      throw new StepError(NAME, "the base image, key pair and security group must come first", undefined, "run resolve-base-image, key-pair and security-group before run-builder");
    }
    const rootDeviceName = state.rootDeviceName ?? (await rootDeviceOf(ec2, baseImageId));
    const tags = builderTags(state);

    throwIfAborted(NAME, ctx.signal, "launching the builder");
    // Ctrl-C waits for the call that creates (call-signal.ts): the instance's id must come back to be terminated.
    const out = await awsCall(NAME, `launching a ${s.instanceType} builder from ${baseImageId} in ${s.subnetId}`, () => unabortable(() =>
      ec2.send(
        new RunInstancesCommand({
          ImageId: baseImageId,
          InstanceType: s.instanceType as _InstanceType,
          SubnetId: s.subnetId,
          SecurityGroupIds: [securityGroupId],
          KeyName: keyPair.name,
          MinCount: 1,
          MaxCount: 1,
          // Makes an SDK retry after a lost response return this instance, not launch a second one.
          ClientToken: `kiln-${state.buildId}`.slice(0, 64),
          MetadataOptions: { HttpTokens: "required", HttpEndpoint: "enabled" },
          BlockDeviceMappings: [
            { DeviceName: rootDeviceName, Ebs: { Encrypted: true, VolumeType: "gp3", VolumeSize: s.rootVolumeSize, DeleteOnTermination: true } },
          ],
          InstanceInitiatedShutdownBehavior: "terminate",
          UserData: Buffer.from(builderUserData(s.builderLifetimeMinutes)).toString("base64"),
          TagSpecifications: [tagSpec("instance", tags), tagSpec("volume", tags)],
        }),
      )),
    );
    const instanceId = out.Instances?.[0]?.InstanceId;
    state.instanceId = instanceId;
    if (!instanceId) throw new StepError(NAME, "RunInstances returned no instance", undefined, "bake again");
    ctx.log(`launched ${instanceId}; it ends itself after ${s.builderLifetimeMinutes} minutes`);

    const instance = await waitForInstance(ec2, instanceId, "running", {
      ...instanceWaitOptions(NAME, s, ctx.signal, ctx.log),
      dead: ["shutting-down", "terminated", "stopping", "stopped"],
      deadHint:
        "the builder ended before it ran: see the state reason (capacity: another instance type or subnet; " +
        "KMS: the account's default EBS encryption key must be usable)",
      timeoutHint: `${instanceId} did not reach running: check it in the EC2 console; this bake terminates it`,
    });
    const host = instance?.PublicIpAddress ?? instance?.PrivateIpAddress;
    if (!host) throw new StepError(NAME, `${instanceId} runs but has no IP address`, undefined, "check the subnet (kiln:bake.subnetId)");
    state.ssh = { host, port: 22, user: s.sshUser, privateKey: keyPair.privateKey };
    ctx.log(`${instanceId} running at ${host}`);
  },

  async cleanup(state, ctx) {
    if (!state.instanceId) return;
    await terminateInstance(state.clients.ec2, state.instanceId, instanceWaitOptions(NAME, state.settings, ctx.signal, ctx.log));
    ctx.log(`terminated ${state.instanceId}`);
  },
};

async function rootDeviceOf(ec2: EC2Client, imageId: string): Promise<string> {
  const out = await awsCall(NAME, `looking up the base image ${imageId}`, () => ec2.send(new DescribeImagesCommand({ ImageIds: [imageId] })));
  const root = out.Images?.[0]?.RootDeviceName;
  if (!root) throw new StepError(NAME, `the base image ${imageId} has no root device`, undefined, "choose an EBS-backed base image");
  return root;
}

/** Terminates an instance and waits until it is terminated (or gone), so its security group can go. */
export async function terminateInstance(ec2: EC2Client, instanceId: string, opts: WaitOptions): Promise<void> {
  try {
    await awsCall(opts.step, `terminating ${instanceId}`, () => ec2.send(new TerminateInstancesCommand({ InstanceIds: [instanceId] })), {
      UnauthorizedOperation: `terminate ${instanceId} yourself (EC2 console), or grant ec2:TerminateInstances and run bake-ami --reap`,
    });
  } catch (e) {
    if (isAwsError(e, "InvalidInstanceID.NotFound")) return;
    throw e;
  }
  await waitForInstance(ec2, instanceId, "terminated", {
    ...opts,
    goneOk: true,
    timeoutHint: `${instanceId} is still terminating: check the EC2 console; bake-ami --reap removes what is left`,
  });
}
