import type {
  CreateImageCommandInput,
  DeleteSnapshotCommandInput,
  DeregisterImageCommandInput,
  DescribeImagesCommandInput,
  DescribeLaunchTemplatesCommandInput,
  DescribeLaunchTemplateVersionsCommandInput,
  DescribeSnapshotsCommandInput,
  Image,
  ModifyImageAttributeCommandInput,
} from "@aws-sdk/client-ec2";
import type { GetParameterCommandInput } from "@aws-sdk/client-ssm";
import { awsError } from "./errors";
import { ec2Error, FakeImage, FakeImageDevice, ids, matchesFilters, paginate, tagList, tagSpecs } from "./ec2-model";
import type { Ec2World } from "./ec2-world";

/** What CreateImage accepts as a name. */
const AMI_NAME = /^[A-Za-z0-9()[\] ./\-'@_]{3,128}$/;

const imageNotFound = (m: string[]) => ec2Error("InvalidAMIID.NotFound", `The image id '[${m.join(", ")}]' does not exist`);

/** EC2's answers for images, snapshots and launch templates, and SSM's for public parameters. */
export class ImageApi {
  constructor(private readonly w: Ec2World) {}

  createImage(input: CreateImageCommandInput) {
    const w = this.w;
    if (!input.InstanceId) throw ec2Error("MissingParameter", "The request must contain the parameter InstanceId");
    const instance = w.instances.get(input.InstanceId);
    if (!instance) throw ec2Error("InvalidInstanceID.NotFound", `The instance ID '${input.InstanceId}' does not exist`);
    if (instance.state !== "running" && instance.state !== "stopped") {
      throw ec2Error("IncorrectState", `Instance '${instance.id}' is not in a valid state for this operation: ${instance.state}`);
    }
    if (!input.Name) throw ec2Error("MissingParameter", "The request must contain the parameter Name");
    if (!AMI_NAME.test(input.Name)) {
      throw ec2Error("InvalidAMIName.Malformed", `AMI names must be between 3 and 128 characters long, and may contain letters, numbers, '(', ')', '.', '-', '/' and '_' (${input.Name})`);
    }
    const clash = [...w.images.values()].find((im) => im.ownerId === w.account && im.name === input.Name);
    if (clash) throw ec2Error("InvalidAMIName.Duplicate", `AMI name ${input.Name} is already in use by AMI ${clash.id}`);
    const tags = tagSpecs(input.TagSpecifications, ["image", "snapshot"]);

    const devices: FakeImageDevice[] = instance.volumes.map((v) => {
      const m = input.BlockDeviceMappings?.find((b) => b.DeviceName === v.deviceName)?.Ebs;
      if (m?.VolumeSize !== undefined && m.VolumeSize < v.size) {
        throw ec2Error("InvalidBlockDeviceMapping", `Volume of size ${m.VolumeSize}GB is smaller than the instance's volume of ${v.size}GB at ${v.deviceName}`);
      }
      return {
        deviceName: v.deviceName,
        size: m?.VolumeSize ?? v.size,
        volumeType: m?.VolumeType ?? v.volumeType,
        // Encrypted: false on an encrypted volume is ignored: its image stays encrypted.
        encrypted: v.encrypted || m?.Encrypted === true,
        deleteOnTermination: m?.DeleteOnTermination ?? v.deleteOnTermination,
      };
    });
    for (const d of devices) {
      d.snapshotId = w.addSnapshot({ size: d.size, tags: { ...(tags.snapshot ?? {}) }, encrypted: d.encrypted, seeded: false, state: "pending" });
      w.snapshots.get(d.snapshotId)!.description = `Created by CreateImage(${instance.id}) for ${input.Name}`;
    }

    const id = w.idMaker.next("ami");
    w.images.set(id, {
      id,
      name: input.Name,
      ownerId: w.account,
      public: false,
      state: "pending",
      architecture: instance.architecture,
      rootDeviceName: instance.rootDeviceName,
      devices,
      creationDate: w.now(),
      tags: { ...(tags.image ?? {}) },
      description: input.Description,
      ticksLeft: w.options.imageTicks,
      failWith: w.nextImageFailure,
      sourceInstanceId: instance.id,
      seeded: false,
    });
    w.nextImageFailure = undefined;
    w.unseen.set(id, w.options.notFoundDescribes);
    return { ImageId: id };
  }

  describeImages(input: DescribeImagesCommandInput) {
    const w = this.w;
    w.tickImages();
    for (const id of input.ImageIds ?? []) {
      if (!/^ami-[0-9a-f]{8,17}$/.test(id)) throw ec2Error("InvalidAMIID.Malformed", `Invalid id: "${id}" (expecting "ami-...")`);
    }
    if (input.ImageIds?.length && input.MaxResults !== undefined) {
      throw ec2Error("InvalidParameterCombination", "The parameter ImageIds cannot be used with the parameter MaxResults");
    }
    const list = ids(w.images, input.ImageIds, imageNotFound);
    const unseen = (input.ImageIds ?? []).filter((id) => w.stillUnseen(id));
    if (unseen.length) throw imageNotFound(unseen);
    const owners = input.Owners ?? [];
    const matching = list
      .filter((im) => input.ImageIds?.length || owners.length || im.public || im.ownerId === w.account)
      .filter((im) => !owners.length || owners.some((o) => (o === "self" ? im.ownerId === w.account : o === im.ownerId || o === im.ownerAlias)))
      .filter((im) =>
        matchesFilters(
          input.Filters,
          {
            "image-id": im.id,
            name: im.name,
            state: im.state,
            architecture: im.architecture,
            "owner-id": im.ownerId,
            "owner-alias": im.ownerAlias,
            "is-public": String(im.public),
            "root-device-name": im.rootDeviceName,
            "root-device-type": "ebs",
            "block-device-mapping.snapshot-id": im.devices.map((d) => d.snapshotId),
            description: im.description,
          },
          im.tags,
        ),
      );
    const { page, NextToken } = paginate("DescribeImages", matching, input, { min: 5, max: 1000, pageSize: w.options.pageSize });
    return { Images: page.map((im) => this.describe(im)), NextToken };
  }

  describe(im: FakeImage): Image {
    return {
      ImageId: im.id,
      Name: im.name,
      Description: im.description,
      State: im.state,
      StateReason: im.stateReason,
      OwnerId: im.ownerId,
      ImageOwnerAlias: im.ownerAlias,
      Public: im.public,
      Architecture: im.architecture as never,
      CreationDate: im.creationDate.toISOString(),
      RootDeviceName: im.rootDeviceName,
      RootDeviceType: "ebs",
      VirtualizationType: "hvm",
      EnaSupport: true,
      ImdsSupport: im.imdsSupport as never,
      BlockDeviceMappings: im.devices.map((d) => ({
        DeviceName: d.deviceName,
        Ebs: { SnapshotId: d.snapshotId, VolumeSize: d.size, VolumeType: d.volumeType as never, Encrypted: d.encrypted, DeleteOnTermination: d.deleteOnTermination },
      })),
      Tags: tagList(im.tags),
    };
  }

  modifyImageAttribute(input: ModifyImageAttributeCommandInput) {
    const im = input.ImageId ? this.w.images.get(input.ImageId) : undefined;
    if (!im) throw imageNotFound([input.ImageId ?? ""]);
    if (im.ownerId !== this.w.account) throw ec2Error("AuthFailure", `Not authorized for image:${im.id}`);
    if (input.ImdsSupport) {
      if (input.ImdsSupport.Value !== "v2.0") throw ec2Error("InvalidParameterValue", `Invalid value '${input.ImdsSupport.Value}' for ImdsSupport; the only value is v2.0`);
      im.imdsSupport = "v2.0";
    } else if (input.Description) {
      im.description = input.Description.Value;
    } else {
      throw new Error(`fake EC2 does not model ModifyImageAttribute ${input.Attribute ?? JSON.stringify(input)}`);
    }
    return {};
  }

  deregisterImage(input: DeregisterImageCommandInput) {
    const im = input.ImageId ? this.w.images.get(input.ImageId) : undefined;
    if (!im) throw imageNotFound([input.ImageId ?? ""]);
    if (im.ownerId !== this.w.account) throw ec2Error("AuthFailure", `Not authorized for image:${im.id}`);
    this.w.images.delete(im.id);
    this.w.deregistered.push(im.id);
    const results = [];
    if (input.DeleteAssociatedSnapshots) {
      for (const d of im.devices) {
        if (d.snapshotId && this.w.snapshots.delete(d.snapshotId)) results.push({ SnapshotId: d.snapshotId, ReturnCode: "success" as const });
      }
    }
    return { Return: true, DeleteSnapshotResults: results };
  }

  describeSnapshots(input: DescribeSnapshotsCommandInput) {
    const w = this.w;
    if (input.SnapshotIds?.length && input.MaxResults !== undefined) {
      throw ec2Error("InvalidParameterCombination", "The parameter SnapshotIds cannot be used with the parameter MaxResults");
    }
    const list = ids(w.snapshots, input.SnapshotIds, (m) => ec2Error("InvalidSnapshot.NotFound", `The snapshot '${m.join(", ")}' does not exist.`))
      .filter((s) => !input.OwnerIds?.length || input.OwnerIds.some((o) => (o === "self" ? s.ownerId === w.account : o === s.ownerId)))
      .filter((s) =>
        matchesFilters(
          input.Filters,
          { "snapshot-id": s.id, status: s.state, "owner-id": s.ownerId, "volume-size": String(s.size), encrypted: String(s.encrypted), description: s.description },
          s.tags,
        ),
      );
    const { page, NextToken } = paginate("DescribeSnapshots", list, input, { min: 5, max: 1000, pageSize: w.options.pageSize });
    return {
      Snapshots: page.map((s) => ({
        SnapshotId: s.id,
        State: s.state,
        Progress: s.state === "pending" ? "42%" : "100%",
        VolumeSize: s.size,
        Encrypted: s.encrypted,
        OwnerId: s.ownerId,
        StartTime: s.startTime,
        Description: s.description,
        Tags: tagList(s.tags),
      })),
      NextToken,
    };
  }

  deleteSnapshot(input: DeleteSnapshotCommandInput) {
    const snap = input.SnapshotId ? this.w.snapshots.get(input.SnapshotId) : undefined;
    if (!snap) throw ec2Error("InvalidSnapshot.NotFound", `The snapshot '${input.SnapshotId}' does not exist.`);
    if (snap.ownerId !== this.w.account) throw ec2Error("UnauthorizedOperation", `You are not authorized to delete ${snap.id}`);
    const user = this.w.imagesUsing(snap.id)[0];
    if (user) throw ec2Error("InvalidSnapshot.InUse", `The snapshot ${snap.id} is currently in use by ${user.id}`);
    this.w.snapshots.delete(snap.id);
    return {};
  }

  describeLaunchTemplates(input: DescribeLaunchTemplatesCommandInput) {
    const w = this.w;
    const missingName = (input.LaunchTemplateNames ?? []).find((n) => ![...w.launchTemplates.values()].some((lt) => lt.name === n));
    if (missingName) throw ec2Error("InvalidLaunchTemplateName.NotFoundException", `At least one of the launch templates specified in the request does not exist.`);
    const list = ids(w.launchTemplates, input.LaunchTemplateIds, (m) => ec2Error("InvalidLaunchTemplateId.NotFound", `The specified launch template, with template ID ${m[0]}, does not exist.`))
      .filter((lt) => !input.LaunchTemplateNames?.length || input.LaunchTemplateNames.includes(lt.name))
      .filter((lt) => matchesFilters(input.Filters, { "launch-template-name": lt.name }, lt.tags));
    const { page, NextToken } = paginate("DescribeLaunchTemplates", list, input, { min: 1, max: 200, pageSize: w.options.pageSize });
    return {
      LaunchTemplates: page.map((lt) => ({
        LaunchTemplateId: lt.id,
        LaunchTemplateName: lt.name,
        CreateTime: lt.createTime,
        DefaultVersionNumber: lt.defaultVersion,
        LatestVersionNumber: lt.versions.length,
        Tags: tagList(lt.tags),
      })),
      NextToken,
    };
  }

  describeLaunchTemplateVersions(input: DescribeLaunchTemplateVersionsCommandInput) {
    const w = this.w;
    if (!input.LaunchTemplateId && !input.LaunchTemplateName) {
      throw ec2Error("MissingParameter", "The request must contain the parameter LaunchTemplateName or LaunchTemplateId");
    }
    const lt = input.LaunchTemplateId
      ? w.launchTemplates.get(input.LaunchTemplateId)
      : [...w.launchTemplates.values()].find((t) => t.name === input.LaunchTemplateName);
    if (!lt) {
      throw input.LaunchTemplateId
        ? ec2Error("InvalidLaunchTemplateId.NotFound", `The specified launch template, with template ID ${input.LaunchTemplateId}, does not exist.`)
        : ec2Error("InvalidLaunchTemplateName.NotFoundException", `The specified launch template, with template name ${input.LaunchTemplateName}, does not exist.`);
    }
    const wanted = (input.Versions ?? []).map((v) => (v === "$Latest" ? lt.versions.length : v === "$Default" ? lt.defaultVersion : Number(v)));
    const versions = lt.versions
      .filter((v) => !wanted.length || wanted.includes(v.number))
      .filter((v) => (input.MinVersion === undefined || v.number >= Number(input.MinVersion)) && (input.MaxVersion === undefined || v.number <= Number(input.MaxVersion)));
    const { page, NextToken } = paginate("DescribeLaunchTemplateVersions", versions, input, { min: 1, max: 200, pageSize: w.options.pageSize });
    return {
      LaunchTemplateVersions: page.map((v) => ({
        LaunchTemplateId: lt.id,
        LaunchTemplateName: lt.name,
        VersionNumber: v.number,
        DefaultVersion: v.number === lt.defaultVersion,
        CreateTime: v.createTime,
        LaunchTemplateData: v.imageId ? { ImageId: v.imageId } : {},
      })),
      NextToken,
    };
  }

  getParameter(input: GetParameterCommandInput) {
    const value = input.Name ? this.w.parameters.get(input.Name) : undefined;
    if (value === undefined) throw awsError("ssm", "ParameterNotFound", `Parameter ${input.Name} not found.`);
    return {
      Parameter: {
        Name: input.Name,
        Type: "String" as const,
        Value: value,
        Version: 1,
        DataType: "aws:ec2:image",
        ARN: `arn:aws:ssm:${this.w.region}::parameter${input.Name}`,
        LastModifiedDate: new Date("2026-01-01T00:00:00.000Z"),
      },
    };
  }
}
