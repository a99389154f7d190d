import type { ResourceType, Tag, TagSpecification } from "@aws-sdk/client-ec2";
import type { BakeState } from "../state";

/** The tags kiln finds its resources by: builders to reap, images to reuse and prune. */
export const TAG = {
  builder: "kiln:builder",
  buildId: "kiln:build-id",
  stack: "kiln:stack",
  contentHash: "kiln:content-hash",
  gitCommit: "kiln:git-commit",
  baseImage: "kiln:base-image",
  /** Set last, once an image is everything kiln makes it (IMDSv2 only, snapshots tagged): only such images are reused. */
  complete: "kiln:complete",
  /** On a copy in another region: the image it was copied from. */
  sourceImage: "kiln:source-image",
  managedBy: "ManagedBy",
} as const;

export const MANAGED_BY = "kiln";

/** Key pair, security group and instance of one build share this name. */
export function builderName(state: BakeState): string {
  return `kiln-builder-${state.buildId}`;
}

export function tagList(tags: Record<string, string>): Tag[] {
  return Object.entries(tags).map(([Key, Value]) => ({ Key, Value }));
}

export function tagSpec(type: ResourceType, tags: Record<string, string>): TagSpecification {
  return { ResourceType: type, Tags: tagList(tags) };
}

/** The stack's own tags (cost allocation) under kiln's, which always win. */
export function builderTags(state: BakeState): Record<string, string> {
  return {
    ...state.settings.tags,
    Name: `kiln-builder-${state.settings.stack}-${state.buildId}`,
    [TAG.builder]: "true",
    [TAG.buildId]: state.buildId,
    [TAG.stack]: state.settings.stack,
    [TAG.managedBy]: MANAGED_BY,
  };
}

export function tagValue(tags: Tag[] | undefined, key: string): string | undefined {
  return tags?.find((t) => t.Key === key)?.Value;
}
