import {
  AddRoleToInstanceProfileCommand,
  CreateInstanceProfileCommand,
  CreateRoleCommand,
  DeleteInstanceProfileCommand,
  DeleteRoleCommand,
  DeleteRolePolicyCommand,
  GetInstanceProfileCommand,
  IAMClient,
  ListInstanceProfilesCommand,
  PutRolePolicyCommand,
  RemoveRoleFromInstanceProfileCommand,
} from "@aws-sdk/client-iam";
import { awsCall, isAwsError } from "../aws-errors";
import { unabortable } from "../call-signal";
import type { BakeState } from "../state";
import { Step, StepError } from "../step";
import { builderName, builderTags, TAG } from "./tags";

const NAME = "instance-profile";
/** Every builder profile lives under this IAM path, so reap lists them without reading every profile. */
export const PROFILE_PATH = "/kiln-builder/";
const POLICY = "session-manager";

/**
 * What the SSM agent on the builder needs for a Session Manager session, and nothing else: the same
 * actions the workers' role grants for it (infra/worker-policy.ts). AmazonSSMManagedInstanceCore would
 * also let the builder read every SSM parameter of the account.
 */
export const SESSION_MANAGER_POLICY = JSON.stringify({
  Version: "2012-10-17",
  Statement: [
    { Effect: "Allow", Action: ["ssm:UpdateInstanceInformation"], Resource: "*" },
    {
      Effect: "Allow",
      Action: ["ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel", "ssmmessages:OpenControlChannel", "ssmmessages:OpenDataChannel"],
      Resource: "*",
    },
  ],
});

const TRUST = JSON.stringify({
  Version: "2012-10-17",
  Statement: [{ Effect: "Allow", Principal: { Service: "ec2.amazonaws.com" }, Action: "sts:AssumeRole" }],
});

/**
 * With sshInterface session_manager (Packer's ssh_interface = session_manager): a temporary role and
 * instance profile for the builder, so its SSM agent can register and carry the SSH session; the
 * builder then needs no inbound rule and no public address.
 */
export const stepInstanceProfile: Step<BakeState> = {
  name: NAME,
  title: "temporary instance profile for Session Manager",

  async run(state, ctx) {
    if (state.settings.sshInterface !== "session_manager") {
      ctx.log("not needed: SSH goes over the network (sshInterface is not session_manager)");
      return;
    }
    const iam = iamOf(state);
    const name = builderName(state);
    const tags = Object.entries(builderTags(state)).map(([Key, Value]) => ({ Key, Value }));
    // Ctrl-C waits for the calls that create (call-signal.ts); each name is recorded before the next call.
    await awsCall(NAME, `creating role ${name}`, () =>
      unabortable(() => iam.send(new CreateRoleCommand({ RoleName: name, Path: PROFILE_PATH, AssumeRolePolicyDocument: TRUST, Tags: tags, Description: `kiln builder ${state.buildId}` }))),
    );
    state.builderProfile = { name, role: true };
    await awsCall(NAME, `allowing ${name} to register with Session Manager`, () =>
      iam.send(new PutRolePolicyCommand({ RoleName: name, PolicyName: POLICY, PolicyDocument: SESSION_MANAGER_POLICY })),
    );
    await awsCall(NAME, `creating instance profile ${name}`, () =>
      unabortable(() => iam.send(new CreateInstanceProfileCommand({ InstanceProfileName: name, Path: PROFILE_PATH, Tags: tags }))),
    );
    state.builderProfile = { name, role: true, profile: true };
    await awsCall(NAME, `adding role ${name} to its instance profile`, () =>
      iam.send(new AddRoleToInstanceProfileCommand({ InstanceProfileName: name, RoleName: name })),
    );
    ctx.log(`${name}: role and instance profile (ssm:UpdateInstanceInformation, ssmmessages:*)`);
  },

  async cleanup(state, ctx) {
    if (!state.builderProfile) return;
    await deleteBuilderProfile(iamOf(state), NAME, state.builderProfile.name);
    ctx.log(`deleted role and instance profile ${state.builderProfile.name}`);
  },
};

function iamOf(state: BakeState): IAMClient {
  if (!state.clients.iam) throw new StepError(NAME, "no IAM client", undefined, "pass clients.iam");
  return state.clients.iam;
}

const gone = (e: unknown) => isAwsError(e, "NoSuchEntity", "NoSuchEntityException");

/** Removes a builder's instance profile and role, whatever part of them exists. */
export async function deleteBuilderProfile(iam: IAMClient, step: string, name: string): Promise<void> {
  const tolerate = async (doing: string, call: () => Promise<unknown>) => {
    try {
      await awsCall(step, doing, call);
    } catch (e) {
      if (!gone(e)) throw e;
    }
  };
  await tolerate(`removing role ${name} from its instance profile`, () => iam.send(new RemoveRoleFromInstanceProfileCommand({ InstanceProfileName: name, RoleName: name })));
  await tolerate(`deleting instance profile ${name}`, () => iam.send(new DeleteInstanceProfileCommand({ InstanceProfileName: name })));
  await tolerate(`deleting the policy of role ${name}`, () => iam.send(new DeleteRolePolicyCommand({ RoleName: name, PolicyName: POLICY })));
  await tolerate(`deleting role ${name}`, () => iam.send(new DeleteRoleCommand({ RoleName: name })));
}

/** kiln's builder profiles (under PROFILE_PATH), with their build and creation time, for reap. */
export async function builderProfiles(iam: IAMClient, step: string, stack: string | undefined): Promise<{ name: string; buildId?: string; created?: Date }[]> {
  const found: { name: string; buildId?: string; created?: Date }[] = [];
  let Marker: string | undefined;
  do {
    const page = await awsCall(step, "listing kiln builder instance profiles", () => iam.send(new ListInstanceProfilesCommand({ PathPrefix: PROFILE_PATH, Marker })));
    for (const p of page.InstanceProfiles ?? []) {
      // ListInstanceProfiles leaves tags out; one GetInstanceProfile each says whose it is.
      const full = await awsCall(step, `looking up ${p.InstanceProfileName}`, () => iam.send(new GetInstanceProfileCommand({ InstanceProfileName: p.InstanceProfileName })));
      const tags = full.InstanceProfile?.Tags ?? [];
      const tag = (k: string) => tags.find((t) => t.Key === k)?.Value;
      if (stack && tag(TAG.stack) !== stack) continue;
      found.push({ name: p.InstanceProfileName!, buildId: tag(TAG.buildId), created: p.CreateDate });
    }
    Marker = page.IsTruncated ? page.Marker : undefined;
  } while (Marker);
  return found;
}
