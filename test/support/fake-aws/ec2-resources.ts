import type {
  AuthorizeSecurityGroupIngressCommandInput,
  CreateKeyPairCommandInput,
  CreateSecurityGroupCommandInput,
  CreateTagsCommandInput,
  DeleteKeyPairCommandInput,
  DeleteSecurityGroupCommandInput,
  DescribeInstanceTypesCommandInput,
  DescribeKeyPairsCommandInput,
  DescribeRegionsCommandInput,
  DescribeSecurityGroupsCommandInput,
  DescribeSubnetsCommandInput,
  IpPermission,
} from "@aws-sdk/client-ec2";
import { isIP } from "node:net";
import { checkTags, ec2Error, ids, matchesFilters, mergeTags, paginate, plural, tagList, tagSpecs } from "./ec2-model";
import { ed25519Key, rsaKey } from "./ec2-keys";
import type { Ec2World } from "./ec2-world";

/** EC2's answers for regions, subnets, instance types, key pairs, security groups and tags. */
export class ResourceApi {
  constructor(private readonly w: Ec2World) {}

  describeRegions(input: DescribeRegionsCommandInput) {
    for (const name of input.RegionNames ?? []) {
      if (!this.w.regions.some((r) => r.name === name)) throw ec2Error("InvalidParameterValue", `Invalid region: ${name}`);
    }
    const regions = this.w.regions
      .filter((r) => input.AllRegions || r.optIn !== "not-opted-in")
      .filter((r) => !input.RegionNames?.length || input.RegionNames.includes(r.name))
      .filter((r) => matchesFilters(input.Filters, { "region-name": r.name, "opt-in-status": r.optIn, endpoint: `ec2.${r.name}.amazonaws.com` }, {}));
    return { Regions: regions.map((r) => ({ RegionName: r.name, Endpoint: `ec2.${r.name}.amazonaws.com`, OptInStatus: r.optIn })) };
  }

  describeSubnets(input: DescribeSubnetsCommandInput) {
    for (const id of input.SubnetIds ?? []) {
      if (!/^subnet-[0-9a-f]{8,17}$/.test(id)) throw ec2Error("InvalidSubnetID.Malformed", `Invalid id: "${id}"`);
    }
    if (input.SubnetIds?.length && input.MaxResults !== undefined) {
      throw ec2Error("InvalidParameterCombination", "The parameter subnetIds cannot be used with the parameter maxResults");
    }
    const list = ids(this.w.subnets, input.SubnetIds, (m) => ec2Error("InvalidSubnetID.NotFound", plural(m, "The subnet ID '%' does not exist", "The subnet IDs '%' do not exist")));
    const matching = list.filter((s) =>
      matchesFilters(
        input.Filters,
        { "subnet-id": s.id, "vpc-id": s.vpcId, "availability-zone": s.az, "cidr-block": `${s.prefix}.0/20`, "map-public-ip-on-launch": String(s.mapPublicIp), state: "available" },
        s.tags,
      ),
    );
    const { page, NextToken } = paginate("DescribeSubnets", matching, input, { min: 5, max: 1000, pageSize: this.w.options.pageSize });
    return {
      Subnets: page.map((s) => ({
        SubnetId: s.id,
        VpcId: s.vpcId,
        AvailabilityZone: s.az,
        CidrBlock: `${s.prefix}.0/20`,
        State: "available" as const,
        MapPublicIpOnLaunch: s.mapPublicIp,
        DefaultForAz: this.w.vpcs.get(s.vpcId)?.isDefault ?? false,
        AvailableIpAddressCount: 4000,
        OwnerId: this.w.account,
        Tags: tagList(s.tags),
      })),
      NextToken,
    };
  }

  describeInstanceTypes(input: DescribeInstanceTypesCommandInput) {
    const missing = (input.InstanceTypes ?? []).filter((t) => !this.w.instanceTypes.has(t));
    if (missing.length) throw ec2Error("InvalidInstanceType", `The following supplied instance types do not exist: [${missing.join(", ")}]`);
    const list = ids(this.w.instanceTypes, input.InstanceTypes, () => new Error("unreachable")).filter((t) =>
      matchesFilters(input.Filters, { "instance-type": t.type, "processor-info.supported-architecture": t.architectures }, {}),
    );
    const { page, NextToken } = paginate("DescribeInstanceTypes", list, input, { min: 5, max: 100, pageSize: this.w.options.pageSize });
    return {
      InstanceTypes: page.map((t) => ({
        InstanceType: t.type as never,
        ProcessorInfo: { SupportedArchitectures: t.architectures as never[] },
        VCpuInfo: { DefaultVCpus: t.vcpus },
        MemoryInfo: { SizeInMiB: t.memoryMiB },
      })),
      NextToken,
    };
  }

  createKeyPair(input: CreateKeyPairCommandInput) {
    const name = input.KeyName;
    if (!name) throw ec2Error("MissingParameter", "The request must contain the parameter KeyName");
    if (name.length > 255 || !/^[\x20-\x7e]+$/.test(name)) throw ec2Error("InvalidParameterValue", `Invalid key pair name: ${name}`);
    if (this.w.keyPairByName(name)) throw ec2Error("InvalidKeyPair.Duplicate", `The keypair '${name}' already exists.`);
    const type = input.KeyType ?? "rsa";
    if (type !== "rsa" && type !== "ed25519") throw ec2Error("InvalidParameterValue", `Invalid value '${type}' for KeyType.`);
    const format = input.KeyFormat ?? "pem";
    if (format !== "pem") throw new Error(`fake EC2 makes pem keys only (asked for ${format})`);
    const tags = tagSpecs(input.TagSpecifications, ["key-pair"])["key-pair"] ?? {};
    const material = type === "ed25519" ? ed25519Key(name) : rsaKey();
    const id = this.w.idMaker.next("key");
    this.w.keyPairs.set(id, { id, name, type, ...material, createTime: this.w.now(), tags, seeded: false });
    return { KeyName: name, KeyPairId: id, KeyFingerprint: material.fingerprint, KeyMaterial: material.privateKey, Tags: tagList(tags) };
  }

  deleteKeyPair(input: DeleteKeyPairCommandInput) {
    if (input.KeyPairId) {
      if (!this.w.keyPairs.delete(input.KeyPairId)) throw ec2Error("InvalidKeyPair.NotFound", `The key pair '${input.KeyPairId}' does not exist`);
      return { Return: true, KeyPairId: input.KeyPairId };
    }
    if (!input.KeyName) throw ec2Error("MissingParameter", "The request must contain the parameter KeyName or KeyPairId");
    // EC2 answers success for a name it does not know.
    const key = this.w.keyPairByName(input.KeyName);
    if (key) this.w.keyPairs.delete(key.id);
    return { Return: true, KeyPairId: key?.id };
  }

  describeKeyPairs(input: DescribeKeyPairsCommandInput) {
    const missingNames = (input.KeyNames ?? []).filter((n) => !this.w.keyPairByName(n));
    const missingIds = (input.KeyPairIds ?? []).filter((id) => !this.w.keyPairs.has(id));
    const missing = [...missingNames, ...missingIds];
    if (missing.length) throw ec2Error("InvalidKeyPair.NotFound", `The key pair '${missing[0]}' does not exist`);
    const keys = [...this.w.keyPairs.values()]
      .filter((k) => !input.KeyNames?.length || input.KeyNames.includes(k.name))
      .filter((k) => !input.KeyPairIds?.length || input.KeyPairIds.includes(k.id))
      .filter((k) => matchesFilters(input.Filters, { "key-name": k.name, "key-pair-id": k.id, fingerprint: k.fingerprint, "key-type": k.type }, k.tags));
    return {
      KeyPairs: keys.map((k) => ({
        KeyPairId: k.id,
        KeyName: k.name,
        KeyType: k.type as never,
        KeyFingerprint: k.fingerprint,
        CreateTime: k.createTime,
        Tags: tagList(k.tags),
        ...(input.IncludePublicKey ? { PublicKey: k.publicKey } : {}),
      })),
    };
  }

  createSecurityGroup(input: CreateSecurityGroupCommandInput) {
    if (!input.GroupName) throw ec2Error("MissingParameter", "The request must contain the parameter GroupName");
    if (!input.Description) throw ec2Error("MissingParameter", "The request must contain the parameter GroupDescription");
    if (input.GroupName.length > 255 || /^sg-/i.test(input.GroupName)) throw ec2Error("InvalidParameterValue", `Invalid security group name: ${input.GroupName}`);
    if (input.Description.length > 255 || !/^[a-zA-Z0-9. _\-:/()#,@[\]+=&;{}!$*]*$/.test(input.Description)) {
      throw ec2Error("InvalidParameterValue", "Character sets beyond ASCII are not supported. Invalid group description");
    }
    const vpcId = input.VpcId ?? this.w.defaultVpcId;
    if (!this.w.vpcs.has(vpcId)) throw ec2Error("InvalidVpcID.NotFound", `The vpc ID '${vpcId}' does not exist`);
    if (input.GroupName === "default") throw ec2Error("InvalidGroup.Reserved", "The security group 'default' is reserved");
    if ([...this.w.securityGroups.values()].some((g) => g.vpcId === vpcId && g.name === input.GroupName)) {
      throw ec2Error("InvalidGroup.Duplicate", `The security group '${input.GroupName}' already exists for VPC '${vpcId}'`);
    }
    const tags = tagSpecs(input.TagSpecifications, ["security-group"])["security-group"] ?? {};
    const id = this.w.idMaker.next("sg");
    this.w.securityGroups.set(id, { id, name: input.GroupName, description: input.Description, vpcId, ingress: [], tags, isDefault: false, seeded: false });
    return { GroupId: id, Tags: tagList(tags) };
  }

  authorizeSecurityGroupIngress(input: AuthorizeSecurityGroupIngressCommandInput) {
    const sg = input.GroupId ? this.w.securityGroups.get(input.GroupId) : undefined;
    if (!input.GroupId) throw ec2Error("MissingParameter", "The request must contain the parameter GroupId");
    if (!sg) throw ec2Error("InvalidGroup.NotFound", `The security group '${input.GroupId}' does not exist`);
    const added: IpPermission[] = [];
    for (const p of input.IpPermissions ?? []) {
      if (!["tcp", "udp", "icmp", "icmpv6", "-1"].includes(p.IpProtocol ?? "")) throw ec2Error("InvalidParameterValue", `Invalid value '${p.IpProtocol}' for IP protocol.`);
      if (p.IpProtocol === "tcp" || p.IpProtocol === "udp") {
        if (p.FromPort === undefined || p.ToPort === undefined || p.FromPort < 0 || p.ToPort > 65535 || p.FromPort > p.ToPort) {
          throw ec2Error("InvalidParameterValue", `Invalid port range: ${p.FromPort}-${p.ToPort}`);
        }
      }
      for (const r of p.IpRanges ?? []) {
        const [ip, bits] = (r.CidrIp ?? "").split("/");
        if (isIP(ip) !== 4 || !/^\d+$/.test(bits ?? "") || Number(bits) > 32) throw ec2Error("InvalidParameterValue", `CIDR block ${r.CidrIp} is malformed`);
      }
      for (const r of p.Ipv6Ranges ?? []) {
        const [ip, bits] = (r.CidrIpv6 ?? "").split("/");
        if (isIP(ip) !== 6 || !/^\d+$/.test(bits ?? "") || Number(bits) > 128) throw ec2Error("InvalidParameterValue", `CIDR block ${r.CidrIpv6} is malformed`);
      }
      if (!p.IpRanges?.length && !p.Ipv6Ranges?.length && !p.UserIdGroupPairs?.length && !p.PrefixListIds?.length) {
        throw ec2Error("MissingParameter", "No source given for the rule");
      }
      const key = JSON.stringify([p.IpProtocol, p.FromPort, p.ToPort, p.IpRanges?.map((r) => r.CidrIp), p.Ipv6Ranges?.map((r) => r.CidrIpv6)]);
      const existing = sg.ingress.map((q) => JSON.stringify([q.IpProtocol, q.FromPort, q.ToPort, q.IpRanges?.map((r) => r.CidrIp), q.Ipv6Ranges?.map((r) => r.CidrIpv6)]));
      if (existing.includes(key)) throw ec2Error("InvalidPermission.Duplicate", `the specified rule "peer: ${p.IpRanges?.[0]?.CidrIp}, ${p.IpProtocol}, from port: ${p.FromPort}, to port: ${p.ToPort}, ALLOW" already exists`);
      added.push(structuredClone(p));
    }
    sg.ingress.push(...added);
    return { Return: true };
  }

  describeSecurityGroups(input: DescribeSecurityGroupsCommandInput) {
    if (input.GroupIds?.length && input.MaxResults !== undefined) {
      throw ec2Error("InvalidParameterCombination", "The parameter groupIds cannot be used with the parameter maxResults");
    }
    const list = ids(this.w.securityGroups, input.GroupIds, (m) => ec2Error("InvalidGroup.NotFound", `The security group '${m[0]}' does not exist`))
      .filter((g) => !input.GroupNames?.length || input.GroupNames.includes(g.name))
      .filter((g) => matchesFilters(input.Filters, { "group-id": g.id, "group-name": g.name, "vpc-id": g.vpcId, description: g.description }, g.tags));
    const { page, NextToken } = paginate("DescribeSecurityGroups", list, input, { min: 5, max: 1000, pageSize: this.w.options.pageSize });
    return {
      SecurityGroups: page.map((g) => ({
        GroupId: g.id,
        GroupName: g.name,
        Description: g.description,
        VpcId: g.vpcId,
        OwnerId: this.w.account,
        IpPermissions: structuredClone(g.ingress),
        IpPermissionsEgress: [{ IpProtocol: "-1", IpRanges: [{ CidrIp: "0.0.0.0/0" }] }],
        Tags: tagList(g.tags),
      })),
      NextToken,
    };
  }

  deleteSecurityGroup(input: DeleteSecurityGroupCommandInput) {
    const sg = input.GroupId ? this.w.securityGroups.get(input.GroupId) : undefined;
    if (!input.GroupId) throw ec2Error("MissingParameter", "The request must contain the parameter GroupId");
    if (!sg) throw ec2Error("InvalidGroup.NotFound", `The security group '${input.GroupId}' does not exist`);
    if (sg.isDefault) throw ec2Error("CannotDelete", `the specified group: "${sg.id}" name: "default" cannot be deleted by a user`);
    const users = [...this.w.instances.values()].filter((i) => i.securityGroupIds.includes(sg.id) && (i.state !== "terminated" || i.eniLingers > 0));
    if (users.length) {
      for (const i of users) if (i.state === "terminated") i.eniLingers--;
      throw ec2Error("DependencyViolation", `resource ${sg.id} has a dependent object`);
    }
    this.w.securityGroups.delete(sg.id);
    return { Return: true, GroupId: sg.id };
  }

  createTags(input: CreateTagsCommandInput) {
    if (!input.Resources?.length) throw ec2Error("MissingParameter", "The request must contain the parameter ResourceId");
    const tags = checkTags(input.Tags);
    const targets = input.Resources.map((id) => {
      const target = this.taggable(id);
      if (!target) throw target === null ? ec2Error("InvalidID", `The ID '${id}' is not valid`) : notFound(id);
      return target;
    });
    for (const t of targets) mergeTags({ ...t.tags, ...tags }, {});
    for (const t of targets) Object.assign(t.tags, tags);
    return {};
  }

  /** The tags of the resource with this id: undefined when not found, null when no such kind of id. */
  private taggable(id: string): { tags: Record<string, string> } | undefined | null {
    const prefix = id.split("-")[0];
    const w = this.w;
    const maps: Record<string, Map<string, { tags: Record<string, string> }>> = {
      i: w.instances,
      ami: w.images,
      snap: w.snapshots,
      sg: w.securityGroups,
      key: w.keyPairs,
      subnet: w.subnets,
      lt: w.launchTemplates,
    };
    const map = maps[prefix];
    if (!map) return null;
    return map.get(id);
  }
}

function notFound(id: string): Error {
  const codes: Record<string, [string, string]> = {
    i: ["InvalidInstanceID.NotFound", `The instance ID '${id}' does not exist`],
    ami: ["InvalidAMIID.NotFound", `The image id '[${id}]' does not exist`],
    snap: ["InvalidSnapshot.NotFound", `The snapshot '${id}' does not exist.`],
    sg: ["InvalidGroup.NotFound", `The security group '${id}' does not exist`],
    key: ["InvalidKeyPair.NotFound", `The key pair '${id}' does not exist`],
    subnet: ["InvalidSubnetID.NotFound", `The subnet ID '${id}' does not exist`],
    lt: ["InvalidLaunchTemplateId.NotFound", `The specified launch template, with template ID ${id}, does not exist.`],
  };
  const [code, message] = codes[id.split("-")[0]];
  return ec2Error(code, message);
}
