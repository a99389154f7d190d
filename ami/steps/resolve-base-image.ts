import { _InstanceType, DescribeImagesCommand, DescribeInstanceTypesCommand } from "@aws-sdk/client-ec2";
import { GetParameterCommand } from "@aws-sdk/client-ssm";
import { awsCall } from "../aws-errors";
import type { BakeState } from "../state";
import { Step, StepError } from "../step";

const NAME = "resolve-base-image";
const AMI_ID = /^ami-([0-9a-f]{8}|[0-9a-f]{17})$/;

/** AL2023's public SSM parameters: the latest image for each architecture, in every region. */
export const AL2023_PARAMETERS = {
  x86_64: "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64",
  arm64: "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64",
} as const;

/**
 * Graviton instance types carry a g after the generation (t4g, m7gd, c6gn, im4gn, is4gen, hpc7g),
 * as does a1: how a dry run without AWS guesses the architecture (g5, g4ad are x86 GPU types).
 */
export function architectureFromName(instanceType: string): "x86_64" | "arm64" {
  const family = instanceType.split(".")[0];
  return family === "a1" || /^[a-z]+\d+[a-z]*g/.test(family) ? "arm64" : "x86_64";
}

/**
 * resolve-base-image without AWS (a dry run with no credentials): the architecture from the instance
 * type's name, the base image as given when it is an AMI id. Returns what it could not check.
 */
export async function offlineBaseImage(state: BakeState): Promise<string> {
  const { instanceType, baseImage } = state.settings;
  const architecture = architectureFromName(instanceType);
  state.architecture = architecture;
  const source = baseImage.trim().replace(/^resolve:ssm:/, "") || AL2023_PARAMETERS[architecture];
  if (AMI_ID.test(source)) {
    state.baseImageId = source;
    return `that ${instanceType} runs ${architecture} (guessed from its name) and that ${source} exists, is ${architecture} and fits the root volume`;
  }
  state.baseImageSource = source;
  return `which image ${source} names (so the content hash), and that ${instanceType} runs ${architecture} (guessed from its name)`;
}

const IMAGE_HINT = "set kiln:bake.baseImage to an AMI id or an SSM parameter path that holds one (empty: Amazon Linux 2023 for the builder's architecture)";

/**
 * Finds the builder's architecture from its instance type, then the base image: an AMI id as given,
 * or the one an SSM parameter names (by default AL2023's for that architecture), and checks it can be
 * launched on that instance type with the root volume asked for.
 */
export const stepResolveBaseImage: Step<BakeState> = {
  name: NAME,
  title: "resolve the base image",

  async run(state, ctx) {
    const { ec2, ssm } = state.clients;
    const { instanceType, baseImage, rootVolumeSize } = state.settings;
    const typeHints = { InvalidInstanceType: `${instanceType} is not offered in ${state.settings.region}: set kiln:bake.instanceType to one that is` };

    const types = await awsCall(NAME, `looking up instance type ${instanceType}`, () => ec2.send(new DescribeInstanceTypesCommand({ InstanceTypes: [instanceType as _InstanceType] })), typeHints);
    const archs = types.InstanceTypes?.find((t) => t.InstanceType === instanceType)?.ProcessorInfo?.SupportedArchitectures ?? [];
    const architecture = archs.includes("x86_64") ? "x86_64" : archs.includes("arm64") ? "arm64" : undefined;
    if (!architecture) {
      throw new StepError(
        NAME,
        `instance type ${instanceType} runs ${archs.join(", ") || "no known architecture"}, not x86_64 or arm64`,
        "InvalidInstanceType",
        "set kiln:bake.instanceType to an x86_64 or arm64 instance type",
      );
    }

    const source = baseImage.trim().replace(/^resolve:ssm:/, "") || AL2023_PARAMETERS[architecture];
    let imageId: string;
    if (AMI_ID.test(source)) {
      imageId = source;
    } else if (source.startsWith("/")) {
      const param = await awsCall(NAME, `reading the SSM parameter ${source}`, () => ssm.send(new GetParameterCommand({ Name: source })), {
        ParameterNotFound: `no SSM parameter ${source} in ${state.settings.region}: ${IMAGE_HINT}`,
      });
      imageId = param.Parameter?.Value?.trim() ?? "";
      if (!AMI_ID.test(imageId)) {
        throw new StepError(NAME, `the SSM parameter ${source} holds "${imageId}", not an AMI id`, undefined, IMAGE_HINT);
      }
    } else {
      throw new StepError(NAME, `the base image "${baseImage}" is neither an AMI id nor an SSM parameter path`, undefined, IMAGE_HINT);
    }

    const described = await awsCall(NAME, `looking up the base image ${imageId}`, () => ec2.send(new DescribeImagesCommand({ ImageIds: [imageId] })), {
      "InvalidAMIID.NotFound": `${imageId} does not exist in ${state.settings.region} or is not shared with this account: ${IMAGE_HINT}`,
    });
    const image = described.Images?.find((i) => i.ImageId === imageId);
    if (!image) throw new StepError(NAME, `the base image ${imageId} was not found`, "InvalidAMIID.NotFound", IMAGE_HINT);
    if (image.State !== "available") {
      throw new StepError(NAME, `the base image ${imageId} is ${image.State}, not available`, "InvalidAMIID.Unavailable", IMAGE_HINT);
    }
    if (image.Architecture !== architecture) {
      throw new StepError(
        NAME,
        `the base image ${imageId} is ${image.Architecture}, but instance type ${instanceType} runs ${architecture}`,
        "InvalidParameterValue",
        "make kiln:bake.instanceType and kiln:bake.baseImage agree (an empty baseImage follows the instance type)",
      );
    }
    if (image.RootDeviceType !== "ebs" || !image.RootDeviceName) {
      throw new StepError(NAME, `the base image ${imageId} does not boot from EBS`, undefined, "choose an EBS-backed base image");
    }
    const rootSize = image.BlockDeviceMappings?.find((m) => m.DeviceName === image.RootDeviceName)?.Ebs?.VolumeSize ?? 0;
    if (rootVolumeSize < rootSize) {
      throw new StepError(
        NAME,
        `the root volume (${rootVolumeSize} GiB) is smaller than the base image's (${rootSize} GiB)`,
        "InvalidBlockDeviceMapping",
        `set kiln:rootVolumeSize (or kiln:bake.rootVolumeSize) to at least ${rootSize}`,
      );
    }

    state.baseImageId = imageId;
    state.architecture = architecture;
    state.rootDeviceName = image.RootDeviceName;
    ctx.log(`${imageId} (${image.Name ?? "unnamed"}, ${architecture}${source === imageId ? "" : `, from ${source}`})`);
  },
};
