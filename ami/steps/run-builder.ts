import { _InstanceType, DescribeImagesCommand, EC2Client, RunInstancesCommand, TerminateInstancesCommand } from "@aws-sdk/client-ec2";
import { awsCall, isAwsError } from "../aws-errors";
import { unabortable } from "../call-signal";
import type { BakeState } from "../state";
import { Step, StepError } from "../step";
import { builderTags, tagSpec } from "./tags";
import { instanceWaitOptions, pollUntil, throwIfAborted, waitForInstance, WaitOptions } from "./wait";

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
    const { baseImageId, keyPair, securityGroupId, builderProfile } = state;
    if (!baseImageId || !keyPair || !securityGroupId) {
      throw new StepError(NAME, "the base image, key pair and security group must come first", undefined, "run resolve-base-image, key-pair and security-group before run-builder");
    }
    const rootDeviceName = state.rootDeviceName ?? (await rootDeviceOf(ec2, baseImageId));
    const tags = builderTags(state);

    throwIfAborted(NAME, ctx.signal, "launching the builder");
    // Ctrl-C waits for the call that creates (call-signal.ts): the instance's id must come back to be terminated.
    const launch = () => awsCall(NAME, `launching a ${s.instanceType} builder from ${baseImageId} in ${s.subnetId}`, () => unabortable(() =>
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
            // The image's snapshots inherit this volume's key: CreateImage takes none ("KmsKeyId ... is only
            // supported on BlockDeviceMapping objects called by CreateFleet, RequestSpotInstances, and RunInstances").
            {
              DeviceName: rootDeviceName,
              Ebs: { Encrypted: true, ...(s.kmsKeyId ? { KmsKeyId: s.kmsKeyId } : {}), VolumeType: "gp3", VolumeSize: s.rootVolumeSize, DeleteOnTermination: true },
            },
          ],
          ...(builderProfile?.profile ? { IamInstanceProfile: { Name: builderProfile.name } } : {}),
          InstanceInitiatedShutdownBehavior: "terminate",
          UserData: Buffer.from(builderUserData(s.builderLifetimeMinutes)).toString("base64"),
          TagSpecifications: [tagSpec("instance", tags), tagSpec("volume", tags)],
        }),
      )),
    );
    const out = builderProfile?.profile ? await launchOnceProfileIsVisible(launch, state, ctx.log, ctx.signal) : await launch();
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
    const host = builderAddress(instance, s.sshInterface);
    if (!host) {
      throw new StepError(NAME, `${instanceId} runs but has no ${s.sshInterface === "public_ip" ? "public " : ""}IP address`, undefined,
        "check the subnet (kiln:bake.subnetId), or set kiln:bake.sshInterface to private_ip (from inside the VPC) or session_manager");
    }
    state.ssh = { host, port: 22, user: s.sshUser, privateKey: keyPair.privateKey };
    ctx.log(s.sshInterface === "session_manager" ? `${instanceId} running; SSH goes through Session Manager` : `${instanceId} running at ${host}`);
  },

  async cleanup(state, ctx) {
    if (!state.instanceId) return;
    await terminateInstance(state.clients.ec2, state.instanceId, instanceWaitOptions(NAME, state.settings, ctx.signal, ctx.log));
    ctx.log(`terminated ${state.instanceId}`);
  },
};

/** Where SSH goes: the address sshInterface names; unset, the public one when there is one. Session Manager targets the instance itself. */
function builderAddress(instance: { PublicIpAddress?: string; PrivateIpAddress?: string; InstanceId?: string } | undefined, how: BakeState["settings"]["sshInterface"]): string | undefined {
  if (how === "session_manager") return instance?.InstanceId;
  if (how === "private_ip") return instance?.PrivateIpAddress;
  if (how === "public_ip") return instance?.PublicIpAddress;
  return instance?.PublicIpAddress ?? instance?.PrivateIpAddress;
}

/**
 * A new instance profile takes seconds to reach EC2 (IAM is eventually consistent), and RunInstances
 * refuses it until then: "Value (...) for parameter iamInstanceProfile.name is invalid". Retried until
 * the instance deadline; the client token keeps a retry from launching twice.
 */
async function launchOnceProfileIsVisible<T>(launch: () => Promise<T>, state: BakeState, log: (l: string) => void, signal: AbortSignal): Promise<T> {
  let told = false;
  return pollUntil("the builder's instance profile to reach EC2", instanceWaitOptions(NAME, state.settings, signal, log), async () => {
    try {
      return await launch();
    } catch (e) {
      if (!(isAwsError(e, "InvalidParameterValue") && /iamInstanceProfile/i.test((e as Error).message))) throw e;
      if (!told) log(`EC2 does not see instance profile ${state.builderProfile?.name} yet; retrying`);
      told = true;
      return undefined;
    }
  });
}

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
