import * as YAML from "yaml";
import { INSTANCE_ENV_FILE } from "../worker/contract";

export interface UserDataArgs {
  ssmPrefix: string;
  region: string;
  /** Changes whenever the worker's environment in SSM does, so a change rolls the fleet. */
  envDigest: string;
}

/**
 * Cloud-config that only points the instance at its environment: which SSM prefix, which region.
 * The values themselves stay in SSM, read at boot by kiln-worker-env.service.
 */
export function renderUserData(args: UserDataArgs): string {
  const content = [
    `KILN_SSM_PREFIX=${args.ssmPrefix}`,
    `AWS_REGION=${args.region}`,
    `KILN_ENV_DIGEST=${args.envDigest}`,
    "",
  ].join("\n");
  const config = {
    write_files: [{ path: INSTANCE_ENV_FILE, owner: "root:root", permissions: "0644", content }],
  };
  return "#cloud-config\n" + YAML.stringify(config);
}
