import type { BakeSettings, BakeState } from "../../../ami/state";
import type { FakeEc2 } from "./ec2";
import { FAKE_REGION } from "./fake-aws";

let builds = 0;

/**
 * A bake's state wired to a FakeEc2: the fake's public subnet, a fixed SSH CIDR (no address lookup),
 * millisecond polls and second-long deadlines, a fresh build id and image name each time.
 */
export function fakeBakeState(fake: FakeEc2, over: { settings?: Partial<BakeSettings>; state?: Partial<BakeState> } = {}): BakeState {
  builds++;
  const buildId = `20260101t0000${String(builds).padStart(2, "0")}z-${process.pid.toString(16)}`;
  return {
    buildId,
    settings: {
      stack: "test",
      region: FAKE_REGION,
      instanceType: "t3.medium",
      subnetId: fake.publicSubnetId,
      baseImage: "",
      sshCidr: "203.0.113.7/32",
      sshUser: "ec2-user",
      keep: 3,
      tags: { Team: "files" },
      sshTimeout: 5,
      imageTimeout: 5,
      builderLifetimeMinutes: 120,
      rootVolumeSize: 30,
      instanceTimeout: 5,
      pollMs: 1,
      ...over.settings,
    },
    root: "/nonexistent",
    clients: { ec2: fake.ec2, ssm: fake.ssm },
    imageName: `kiln-worker-test-20260101-0000${String(builds).padStart(2, "0")}`,
    contentHash: "c0ffee",
    gitCommit: "0123456789abcdef0123456789abcdef01234567",
    ...over.state,
  };
}
