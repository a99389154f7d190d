import type {
  DescribeInstancesCommandInput,
  Instance,
  RunInstancesCommandInput,
  StopInstancesCommandInput,
  TerminateInstancesCommandInput,
} from "@aws-sdk/client-ec2";
import { ec2Error, FakeImage, FakeInstance, FakeVolume, ids, INSTANCE_STATE_CODES, matchesFilters, paginate, plural, tagList, tagSpecs } from "./ec2-model";
import type { Ec2World } from "./ec2-world";

const VOLUME_TYPES = ["standard", "gp2", "gp3", "io1", "io2", "st1", "sc1"];

const instanceNotFound = (m: string[]) =>
  ec2Error("InvalidInstanceID.NotFound", plural(m, "The instance ID '%' does not exist", "The instance IDs '%' do not exist"));

function checkInstanceIds(list: string[] | undefined): void {
  for (const id of list ?? []) {
    if (!/^i-[0-9a-f]{8,17}$/.test(id)) throw ec2Error("InvalidInstanceID.Malformed", `Invalid id: "${id}"`);
  }
}

/** EC2's answers for instances: launch, describe, stop, terminate. */
export class InstanceApi {
  constructor(private readonly w: Ec2World) {}

  runInstances(input: RunInstancesCommandInput) {
    const w = this.w;
    if (input.ClientToken && w.clientTokens.has(input.ClientToken)) {
      const same = w.clientTokens.get(input.ClientToken)!.map((id) => w.instances.get(id)!);
      return { ReservationId: same[0].reservationId, OwnerId: w.account, Instances: same.map((i) => this.describe(i)) };
    }
    if (!input.MinCount || !input.MaxCount) throw ec2Error("MissingParameter", "The request must contain the parameters MinCount and MaxCount");
    if (input.MinCount < 1 || input.MaxCount < input.MinCount || input.MaxCount > 20) throw ec2Error("InvalidParameterValue", "Invalid MinCount/MaxCount");
    if (!input.ImageId) throw ec2Error("MissingParameter", "The request must contain the parameter ImageId");
    if (!/^ami-[0-9a-f]{8,17}$/.test(input.ImageId)) throw ec2Error("InvalidAMIID.Malformed", `Invalid id: "${input.ImageId}" (expecting "ami-...")`);
    const image = w.images.get(input.ImageId);
    if (!image) throw ec2Error("InvalidAMIID.NotFound", `The image id '[${input.ImageId}]' does not exist`);
    if (image.state !== "available") throw ec2Error("InvalidAMIID.Unavailable", `The image id '[${input.ImageId}]' is not available (${image.state})`);

    const typeName = input.InstanceType ?? "m1.small";
    const type = w.instanceTypes.get(typeName);
    if (!type) throw ec2Error("InvalidParameterValue", `Invalid value '${typeName}' for InstanceType.`);
    if (!type.architectures.includes(image.architecture)) {
      throw ec2Error(
        "InvalidParameterValue",
        `The architecture '${type.architectures.join(", ")}' of the specified instance type does not match the architecture '${image.architecture}' of the specified AMI.`,
      );
    }

    const subnetId = input.SubnetId ?? w.publicSubnetId;
    if (!/^subnet-[0-9a-f]{8,17}$/.test(subnetId)) throw ec2Error("InvalidSubnetID.Malformed", `Invalid id: "${subnetId}"`);
    const subnet = w.subnets.get(subnetId);
    if (!subnet) throw ec2Error("InvalidSubnetID.NotFound", `The subnet ID '${subnetId}' does not exist`);

    const groupIds = input.SecurityGroupIds?.length
      ? input.SecurityGroupIds
      : [[...w.securityGroups.values()].find((g) => g.isDefault && g.vpcId === subnet.vpcId)!.id];
    for (const g of groupIds) {
      const sg = w.securityGroups.get(g);
      if (!sg) throw ec2Error("InvalidGroup.NotFound", `The security group '${g}' does not exist`);
      if (sg.vpcId !== subnet.vpcId) throw ec2Error("InvalidParameter", `Security group ${g} and subnet ${subnetId} belong to different networks.`);
    }
    if (input.KeyName && !w.keyPairByName(input.KeyName)) throw ec2Error("InvalidKeyPair.NotFound", `The key pair '${input.KeyName}' does not exist`);

    const md = input.MetadataOptions ?? {};
    const httpTokens = md.HttpTokens ?? (image.imdsSupport === "v2.0" ? "required" : "optional");
    if (!["optional", "required"].includes(httpTokens)) throw ec2Error("InvalidParameterValue", `Invalid value '${httpTokens}' for HttpTokens.`);
    const httpEndpoint = md.HttpEndpoint ?? "enabled";
    if (!["enabled", "disabled"].includes(httpEndpoint)) throw ec2Error("InvalidParameterValue", `Invalid value '${httpEndpoint}' for HttpEndpoint.`);
    const hops = md.HttpPutResponseHopLimit ?? (image.imdsSupport === "v2.0" ? 2 : 1);
    if (hops < 1 || hops > 64) throw ec2Error("InvalidParameterValue", `Invalid value '${hops}' for HttpPutResponseHopLimit.`);

    const shutdownBehavior = input.InstanceInitiatedShutdownBehavior ?? "stop";
    if (!["stop", "terminate"].includes(shutdownBehavior)) throw ec2Error("InvalidParameterValue", `Invalid value '${shutdownBehavior}' for InstanceInitiatedShutdownBehavior.`);

    let userData: string | undefined;
    if (input.UserData !== undefined) {
      const decoded = Buffer.from(input.UserData, "base64");
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(input.UserData) || decoded.toString("base64").replace(/=+$/, "") !== input.UserData.replace(/=+$/, "")) {
        throw ec2Error("InvalidParameterValue", "Invalid BASE64 encoding of user data.");
      }
      if (decoded.length > 16384) throw ec2Error("InvalidParameterValue", "User data is limited to 16384 bytes");
      userData = decoded.toString();
    }

    const volumes = this.volumes(input, image);
    const tags = tagSpecs(input.TagSpecifications, ["instance", "volume", "network-interface", "spot-instances-request"]);

    const reservationId = w.idMaker.next("r");
    const launched: FakeInstance[] = [];
    for (let n = 0; n < input.MaxCount; n++) {
      const id = w.idMaker.next("i");
      const instance: FakeInstance = {
        id,
        reservationId,
        imageId: image.id,
        type: typeName,
        subnetId,
        vpcId: subnet.vpcId,
        az: subnet.az,
        securityGroupIds: [...groupIds],
        keyName: input.KeyName,
        state: "pending",
        launchTime: w.now(),
        tags: { ...(tags.instance ?? {}) },
        privateIp: `${subnet.prefix}.${subnet.nextHost++}`,
        userData,
        metadataOptions: { HttpTokens: httpTokens, HttpEndpoint: httpEndpoint, HttpPutResponseHopLimit: hops },
        rootDeviceName: image.rootDeviceName,
        volumes: volumes.map((v) => ({ ...v, volumeId: w.idMaker.next("vol") })),
        shutdownBehavior,
        architecture: image.architecture,
        ticksLeft: w.options.instanceTicks,
        eniLingers: 0,
        launchFailure: w.nextLaunchFailure,
        seeded: false,
        clientToken: input.ClientToken,
      };
      w.nextLaunchFailure = undefined;
      w.instances.set(id, instance);
      w.unseen.set(id, w.options.notFoundDescribes);
      launched.push(instance);
    }
    if (input.ClientToken) w.clientTokens.set(input.ClientToken, launched.map((i) => i.id));
    return { ReservationId: reservationId, OwnerId: w.account, Instances: launched.map((i) => this.describe(i)) };
  }

  /** The instance's volumes: the image's mappings, changed or added to by the request's. */
  private volumes(input: RunInstancesCommandInput, image: FakeImage): Omit<FakeVolume, "volumeId">[] {
    const out = new Map(image.devices.map((d) => [d.deviceName, { deviceName: d.deviceName, size: d.size, volumeType: d.volumeType, encrypted: d.encrypted, deleteOnTermination: d.deleteOnTermination }]));
    for (const m of input.BlockDeviceMappings ?? []) {
      if (!m.DeviceName || !/^\/dev\/[a-z0-9]+$/.test(m.DeviceName)) throw ec2Error("InvalidBlockDeviceMapping", `Invalid device name ${m.DeviceName}`);
      if (!m.Ebs) continue;
      const base = image.devices.find((d) => d.deviceName === m.DeviceName);
      if (m.Ebs.VolumeType && !VOLUME_TYPES.includes(m.Ebs.VolumeType)) throw ec2Error("InvalidParameterValue", `Invalid value '${m.Ebs.VolumeType}' for volumeType.`);
      const size = m.Ebs.VolumeSize ?? base?.size;
      if (size === undefined) throw ec2Error("InvalidBlockDeviceMapping", `The device ${m.DeviceName} needs a volume size or a snapshot`);
      if (base && size < base.size) {
        throw ec2Error("InvalidBlockDeviceMapping", `Volume of size ${size}GB is smaller than snapshot '${base.snapshotId}', expect size >= ${base.size}GB`);
      }
      out.set(m.DeviceName, {
        deviceName: m.DeviceName,
        size,
        volumeType: m.Ebs.VolumeType ?? base?.volumeType ?? "gp2",
        // An encrypted snapshot gives an encrypted volume whatever the request says.
        encrypted: (base?.encrypted ?? false) || m.Ebs.Encrypted === true,
        deleteOnTermination: m.Ebs.DeleteOnTermination ?? base?.deleteOnTermination ?? true,
      });
    }
    return [...out.values()];
  }

  describeInstances(input: DescribeInstancesCommandInput) {
    this.w.tickInstances();
    checkInstanceIds(input.InstanceIds);
    if (input.InstanceIds?.length && input.MaxResults !== undefined) {
      throw ec2Error("InvalidParameterCombination", "The parameter instancesSet cannot be used with the parameter maxResults");
    }
    const list = ids(this.w.instances, input.InstanceIds, instanceNotFound);
    const unseen = (input.InstanceIds ?? []).filter((id) => this.w.stillUnseen(id));
    if (unseen.length) throw instanceNotFound(unseen);
    const matching = list.filter((i) =>
      matchesFilters(
        input.Filters,
        {
          "instance-id": i.id,
          "image-id": i.imageId,
          "instance-state-name": i.state,
          "instance-type": i.type,
          "subnet-id": i.subnetId,
          "vpc-id": i.vpcId,
          "key-name": i.keyName,
          "instance.group-id": i.securityGroupIds,
          "availability-zone": i.az,
          "private-ip-address": i.privateIp,
          "ip-address": i.publicIp,
          architecture: i.architecture,
        },
        i.tags,
      ),
    );
    const { page, NextToken } = paginate("DescribeInstances", matching, input, { min: 5, max: 1000, pageSize: this.w.options.pageSize });
    return { Reservations: page.map((i) => ({ ReservationId: i.reservationId, OwnerId: this.w.account, Instances: [this.describe(i)] })), NextToken };
  }

  stopInstances(input: StopInstancesCommandInput) {
    checkInstanceIds(input.InstanceIds);
    if (!input.InstanceIds?.length) throw ec2Error("MissingParameter", "The request must contain the parameter InstanceIds");
    const list = ids(this.w.instances, input.InstanceIds, instanceNotFound);
    for (const i of list) {
      if (!["running", "stopping", "stopped"].includes(i.state)) {
        throw ec2Error("IncorrectInstanceState", `The instance '${i.id}' is not in a state from which it can be stopped.`);
      }
    }
    return {
      StoppingInstances: list.map((i) => {
        const previous = i.state;
        if (i.state === "running") this.w.setInstanceState(i, "stopping");
        return { InstanceId: i.id, PreviousState: state(previous), CurrentState: state(i.state) };
      }),
    };
  }

  terminateInstances(input: TerminateInstancesCommandInput) {
    checkInstanceIds(input.InstanceIds);
    if (!input.InstanceIds?.length) throw ec2Error("MissingParameter", "The request must contain the parameter InstanceIds");
    const list = ids(this.w.instances, input.InstanceIds, instanceNotFound);
    return {
      TerminatingInstances: list.map((i) => {
        const previous = i.state;
        if (i.state !== "terminated" && i.state !== "shutting-down") this.w.setInstanceState(i, "shutting-down");
        return { InstanceId: i.id, PreviousState: state(previous), CurrentState: state(i.state) };
      }),
    };
  }

  describe(i: FakeInstance): Instance {
    const groups = i.securityGroupIds.map((g) => ({ GroupId: g, GroupName: this.w.securityGroups.get(g)?.name }));
    return {
      InstanceId: i.id,
      ImageId: i.imageId,
      InstanceType: i.type as never,
      State: state(i.state),
      StateReason: i.stateReason,
      StateTransitionReason: i.stateReason?.Message ?? "",
      LaunchTime: i.launchTime,
      SubnetId: i.subnetId,
      VpcId: i.vpcId,
      Placement: { AvailabilityZone: i.az },
      PrivateIpAddress: i.privateIp,
      PublicIpAddress: i.publicIp,
      KeyName: i.keyName,
      SecurityGroups: groups,
      Tags: tagList(i.tags),
      MetadataOptions: { ...i.metadataOptions, State: "applied" } as never,
      RootDeviceName: i.rootDeviceName,
      RootDeviceType: "ebs",
      Architecture: i.architecture as never,
      BlockDeviceMappings: i.volumes.map((v) => ({
        DeviceName: v.deviceName,
        Ebs: { VolumeId: v.volumeId, Status: i.state === "terminated" ? "detached" : "attached", DeleteOnTermination: v.deleteOnTermination },
      })),
    };
  }}

function state(name: FakeInstance["state"]) {
  return { Name: name, Code: INSTANCE_STATE_CODES[name] };
}
