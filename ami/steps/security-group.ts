import {
  AuthorizeSecurityGroupIngressCommand,
  CreateSecurityGroupCommand,
  DeleteSecurityGroupCommand,
  DescribeSubnetsCommand,
  DescribeVpcsCommand,
  EC2Client,
  IpPermission,
} from "@aws-sdk/client-ec2";
import { isIP } from "node:net";
import { awsCall, isAwsError } from "../aws-errors";
import { unabortable } from "../call-signal";
import type { BakeState } from "../state";
import { Step, StepError } from "../step";
import { builderName, builderTags, tagSpec } from "./tags";
import { instanceWaitOptions, pollUntil, throwIfAborted, WaitOptions } from "./wait";

const NAME = "security-group";
const CHECKIP = "https://checkip.amazonaws.com";

export interface SecurityGroupStepOptions {
  /** This machine's public address, when kiln:bake.sshCidr is empty. Default: asks checkip.amazonaws.com. */
  callerAddress?: (signal: AbortSignal) => Promise<string>;
}

/** This machine's public IPv4 address as AWS sees it. */
export async function checkipAddress(signal: AbortSignal): Promise<string> {
  const res = await fetch(CHECKIP, { signal: AbortSignal.any([signal, AbortSignal.timeout(10_000)]) });
  if (!res.ok) throw new Error(`${CHECKIP} answered ${res.status}`);
  return (await res.text()).trim();
}

/** The one rule the builder needs: SSH from `cidr`. */
export function sshRule(cidr: string, description: string): IpPermission {
  const v6 = cidr.includes(":");
  return {
    IpProtocol: "tcp",
    FromPort: 22,
    ToPort: 22,
    ...(v6 ? { Ipv6Ranges: [{ CidrIpv6: cidr, Description: description }] } : { IpRanges: [{ CidrIp: cidr, Description: description }] }),
  };
}

function validCidr(cidr: string): boolean {
  const [ip, bits, ...rest] = cidr.split("/");
  const family = isIP(ip ?? "");
  if (!family || rest.length || !/^\d{1,3}$/.test(bits ?? "")) return false;
  return Number(bits) <= (family === 4 ? 32 : 128);
}

/** A step that makes the builder's security group: SSH in from one CIDR only, in the subnet's VPC. */
export function securityGroupStep(opts: SecurityGroupStepOptions = {}): Step<BakeState> {
  const callerAddress = opts.callerAddress ?? checkipAddress;
  return {
    name: NAME,
    title: "temporary security group: SSH from you only",

    async run(state, ctx) {
      const { ec2 } = state.clients;
      const { subnetId, sshCidr, sshInterface } = state.settings;
      // Session Manager needs no way in: the agent dials out to the service.
      const inbound = sshInterface !== "session_manager";

      const subnets = await awsCall(NAME, `looking up the VPC of ${subnetId}`, () => ec2.send(new DescribeSubnetsCommand({ SubnetIds: [subnetId] })));
      const vpcId = subnets.Subnets?.[0]?.VpcId;
      if (!vpcId) throw new StepError(NAME, `${subnetId} (kiln:bake.subnetId) has no VPC`, "InvalidSubnetID.NotFound", "set kiln:bake.subnetId to a VPC subnet");

      let cidr = sshCidr.trim();
      if (!inbound) {
        cidr = "";
      } else if (!cidr && sshInterface === "private_ip") {
        // From inside the network: the VPC's own range, unless sshCidr names where you come from (a VPN's).
        const vpcs = await awsCall(NAME, `looking up the address range of ${vpcId}`, () => ec2.send(new DescribeVpcsCommand({ VpcIds: [vpcId] })));
        cidr = vpcs.Vpcs?.[0]?.CidrBlock ?? "";
        if (!cidr) throw new StepError(NAME, `${vpcId} has no IPv4 range`, undefined, "set kiln:bake.sshCidr to the CIDR you connect from");
      } else if (!cidr) {
        let address: string;
        try {
          address = (await callerAddress(ctx.signal)).trim();
        } catch (e) {
          throw new StepError(NAME, `could not find this machine's public address: ${(e as Error).message}`, undefined, "set kiln:bake.sshCidr (or --ssh-cidr) to the CIDR you connect from");
        }
        const family = isIP(address);
        if (!family) throw new StepError(NAME, `"${address}" is not an IP address`, undefined, "set kiln:bake.sshCidr (or --ssh-cidr) to the CIDR you connect from");
        cidr = `${address}/${family === 4 ? 32 : 128}`;
      } else if (!validCidr(cidr)) {
        throw new StepError(NAME, `"${cidr}" is not a CIDR`, undefined, "set kiln:bake.sshCidr to a CIDR such as 203.0.113.0/24");
      }

      const name = builderName(state);
      throwIfAborted(NAME, ctx.signal, `creating security group ${name}`);
      // Ctrl-C waits for the call that creates (call-signal.ts): the group id must come back to be deleted.
      const created = await awsCall(NAME, `creating security group ${name} in ${vpcId}`, () => unabortable(() =>
        ec2.send(
          new CreateSecurityGroupCommand({
            GroupName: name,
            Description: inbound ? `kiln builder ${state.buildId}: SSH from ${cidr} only` : `kiln builder ${state.buildId}: no inbound (Session Manager)`,
            VpcId: vpcId,
            TagSpecifications: [tagSpec("security-group", builderTags(state))],
          }),
        )),
      );
      state.securityGroupId = created.GroupId;
      if (!created.GroupId) throw new StepError(NAME, `CreateSecurityGroup returned no id for ${name}`, undefined, "bake again");

      if (!inbound) {
        ctx.log(`${created.GroupId} in ${vpcId}: no inbound rule (Session Manager)`);
        return;
      }
      await awsCall(NAME, `allowing SSH from ${cidr} into ${created.GroupId}`, () =>
        ec2.send(new AuthorizeSecurityGroupIngressCommand({ GroupId: created.GroupId, IpPermissions: [sshRule(cidr, `kiln bake ${state.buildId}`)] })),
      );
      ctx.log(`${created.GroupId} in ${vpcId}: SSH from ${cidr}`);
    },

    async cleanup(state, ctx) {
      if (!state.securityGroupId) return;
      await deleteSecurityGroup(state.clients.ec2, state.securityGroupId, instanceWaitOptions(NAME, state.settings, ctx.signal, ctx.log), ctx.log);
      ctx.log(`deleted ${state.securityGroupId}`);
    },
  };
}

export const stepSecurityGroup = securityGroupStep();

/**
 * Deletes a security group, retrying while AWS says something depends on it: a terminated instance's
 * network interface goes some time after the instance. One already gone counts as deleted.
 */
export async function deleteSecurityGroup(ec2: EC2Client, groupId: string, opts: WaitOptions, log?: (line: string) => void): Promise<void> {
  let told = false;
  await pollUntil(
    `security group ${groupId} to be free to delete`,
    {
      ...opts,
      timeoutCode: "DependencyViolation",
      timeoutHint: `something still uses ${groupId}: delete it later (EC2 console → Security Groups, or bake-ami --reap)`,
    },
    async () => {
      try {
        await awsCall(opts.step, `deleting security group ${groupId}`, () => ec2.send(new DeleteSecurityGroupCommand({ GroupId: groupId })));
        return true;
      } catch (e) {
        if (isAwsError(e, "InvalidGroup.NotFound")) return true;
        if (!isAwsError(e, "DependencyViolation")) throw e;
        if (!told) log?.(`${groupId} is still in use (the builder's network interface is going); retrying`);
        told = true;
        return undefined;
      }
    },
  );
}
