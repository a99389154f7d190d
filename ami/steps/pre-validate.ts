import { DescribeImagesCommand, DescribeRegionsCommand, DescribeSubnetsCommand } from "@aws-sdk/client-ec2";
import { awsCall } from "../aws-errors";
import { installHint, pluginVersion, PLUGIN } from "../session-plugin";
import type { BakeState } from "../state";
import { Step, StepError } from "../step";

const NAME = "pre-validate";
const REGION = /^[a-z]{2}(-[a-z]+)+-\d+$/;
/** What CreateImage accepts as a name; checked now rather than after an hour of provisioning. */
const AMI_NAME = /^[A-Za-z0-9()[\] ./\-'@_]{3,128}$/;

/**
 * Checks, before anything is created, what would otherwise fail late: credentials and region
 * (DescribeRegions is the probe: it needs valid credentials and no other permission than ec2:Describe*),
 * the builder's subnet, that the image name is free, and with session_manager that AWS's plugin is here.
 */
export const stepPreValidate: Step<BakeState> = {
  name: NAME,
  title: "check credentials, region, subnet and image name",

  async run(state, ctx) {
    const { ec2 } = state.clients;
    const { region, subnetId } = state.settings;

    if (!REGION.test(region)) {
      throw new StepError(NAME, `"${region}" is not an AWS region name`, undefined, "set the stack's aws:region (or --region) to a region such as ap-northeast-1");
    }
    if (state.settings.sshInterface === "session_manager") {
      // The tunnel needs AWS's plugin on this machine: find out now, before anything is created.
      const version = await pluginVersion(ctx.signal).catch((e: Error) => {
        throw new StepError(NAME, e.message, undefined, `reinstall it: ${installHint()}`);
      });
      if (!version) {
        throw new StepError(NAME, `sshInterface session_manager needs AWS's ${PLUGIN}, and there is none on this machine's PATH`, undefined, installHint());
      }
      state.sessionPluginVersion = version;
      ctx.log(`${PLUGIN} ${version} will carry SSH to the builder through Session Manager`);
    }
    const clientRegion = await ec2.config.region();
    if (clientRegion !== region) {
      throw new StepError(NAME, `the EC2 client is set up for ${clientRegion}, but the stack is in ${region}`, undefined, "create the clients with the stack's region");
    }

    const regions = await awsCall(NAME, "checking credentials and region with DescribeRegions", () =>
      ec2.send(new DescribeRegionsCommand({ AllRegions: true })),
    );
    const known = regions.Regions?.find((r) => r.RegionName === region);
    if (!known) {
      throw new StepError(NAME, `EC2 does not know the region ${region}`, "InvalidParameterValue", "set the stack's aws:region (or --region) to an existing region");
    }
    if (known.OptInStatus === "not-opted-in") {
      throw new StepError(NAME, `the region ${region} is not enabled for this account`, "OptInRequired", "enable it (console: Account → AWS Regions) or bake in another region");
    }

    const where = `subnet ${subnetId} (kiln:bake.subnetId)`;
    const subnets = await awsCall(NAME, `looking up ${where}`, () => ec2.send(new DescribeSubnetsCommand({ SubnetIds: [subnetId] })), {
      "InvalidSubnetID.NotFound": `${subnetId} does not exist in ${region} for this account: set kiln:bake.subnetId (default: the first of kiln:subnetIds) to a subnet that does`,
      "InvalidSubnetID.Malformed": `set kiln:bake.subnetId to a subnet id such as subnet-0123456789abcdef0 (it is "${subnetId}")`,
    });
    const subnet = subnets.Subnets?.find((s) => s.SubnetId === subnetId);
    if (!subnet) {
      throw new StepError(NAME, `${where} was not found in ${region}`, "InvalidSubnetID.NotFound", "set kiln:bake.subnetId to a subnet of this account and region");
    }
    if (subnet.State && subnet.State !== "available") {
      throw new StepError(NAME, `${where} is ${subnet.State}, not available`, undefined, "wait for it, or set kiln:bake.subnetId to another subnet");
    }
    if (!subnet.MapPublicIpOnLaunch && state.settings.sshInterface !== "session_manager") {
      ctx.log(`${subnetId} gives instances no public address: SSH goes to the builder's private address, which must be reachable from here (VPN, peering)`);
    }

    const imageName = state.imageName;
    if (!imageName) throw new StepError(NAME, "the bake has no image name yet", undefined, "set state.imageName before the steps run");
    if (!AMI_NAME.test(imageName)) {
      throw new StepError(NAME, `"${imageName}" is not a valid AMI name`, "InvalidAMIName.Malformed", "AMI names take 3 to 128 letters, digits, spaces and ( ) [ ] . / - ' @ _ only");
    }
    const taken = await awsCall(NAME, `checking that the image name ${imageName} is free`, () =>
      ec2.send(new DescribeImagesCommand({ Owners: ["self"], Filters: [{ Name: "name", Values: [imageName] }] })),
    );
    const clash = taken.Images?.[0];
    if (clash) {
      throw new StepError(
        NAME,
        `the image name ${imageName} is taken by ${clash.ImageId} (${clash.State})`,
        "InvalidAMIName.Duplicate",
        "bake again (the name carries the time), or deregister that image",
      );
    }
    ctx.log(`credentials and ${region} ok, ${subnetId} in ${subnet.VpcId} (${subnet.AvailabilityZone}), image name ${imageName} free`);
  },
};
