import { DescribeLaunchTemplateVersionsCommand } from "@aws-sdk/client-ec2";
import { awsCall } from "./call";
import type { AwsClients } from "./clients";

/** The image and user data of one launch template version ("$Latest", "$Default" or a number). */
export async function templateVersion(c: AwsClients, id: string, version: string): Promise<{ version?: number; imageId?: string; userData?: string }> {
  const out = await awsCall(`reading launch template ${id} version ${version}`, () =>
    c.ec2.send(new DescribeLaunchTemplateVersionsCommand({ LaunchTemplateId: id, Versions: [version] })),
  );
  const v = out.LaunchTemplateVersions?.[0];
  return {
    version: v?.VersionNumber,
    imageId: v?.LaunchTemplateData?.ImageId,
    userData: v?.LaunchTemplateData?.UserData ? Buffer.from(v.LaunchTemplateData.UserData, "base64").toString("utf8") : undefined,
  };
}
