import { DescribeImagesCommand, EC2Client, Image } from "@aws-sdk/client-ec2";

export interface WorkerImage {
  /** Where the image's root volume attaches: the launch template sizes and encrypts that device. */
  rootDeviceName: string;
  /** GiB of the root snapshot: no root volume can be smaller. */
  rootSnapshotSize?: number;
}

/**
 * The baked image as EC2 knows it. The launch template's root volume must name the image's own root
 * device: any other name adds a second, empty volume and leaves the root at the snapshot's size
 * (Amazon Linux and Debian use /dev/xvda, Ubuntu /dev/sda1). And it must be at least the snapshot's
 * size, or every launch fails. Returns problems so they join the rest of the config's.
 */
export async function inspectWorkerImage(
  ec2: EC2Client,
  amiId: string,
  opts: { stack: string; region: string; rootVolumeSize: number },
): Promise<{ image?: WorkerImage; problems: string[] }> {
  const bake = `\`npm run bake-ami -- --stack ${opts.stack}\``;
  let image: Image | undefined;
  try {
    image = (await ec2.send(new DescribeImagesCommand({ ImageIds: [amiId] }))).Images?.[0];
  } catch (e) {
    if (!/^InvalidAMIID\./.test((e as Error).name)) throw e;
  }
  if (!image) {
    return { problems: [`kiln:amiId ${amiId} does not exist in ${opts.region}, or this account may not use it: bake one with ${bake}`] };
  }
  if (image.State !== "available") {
    return { problems: [`kiln:amiId ${amiId} is ${image.State}, not available: wait for it, or bake another with ${bake}`] };
  }
  if (!image.RootDeviceName) return { problems: [`kiln:amiId ${amiId} names no root device: bake the image with ${bake}`] };
  const root = image.BlockDeviceMappings?.find((m) => m.DeviceName === image!.RootDeviceName);
  const rootSnapshotSize = root?.Ebs?.VolumeSize;
  const problems: string[] = [];
  if (rootSnapshotSize !== undefined && rootSnapshotSize > opts.rootVolumeSize) {
    problems.push(
      `kiln:rootVolumeSize (${opts.rootVolumeSize} GiB) is smaller than the root snapshot of ${amiId} (${rootSnapshotSize} GiB): ` +
        `EC2 would refuse every launch; set kiln:rootVolumeSize to ${rootSnapshotSize} or more`,
    );
  }
  return { image: { rootDeviceName: image.RootDeviceName, rootSnapshotSize }, problems };
}
