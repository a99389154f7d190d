import * as fs from "node:fs";
import * as path from "node:path";
import { bake, BakeOptions, BakeResult } from "../../ami/bake";
import type { BakeState } from "../../ami/state";
import { Step } from "../../ami/step";
import { BuilderHost } from "./builder-host";
import { FakeEc2 } from "./fake-aws";
import { REPO } from "./pulumi-harness";

/**
 * Beside a copy of Pulumi.prod.yaml, what its kiln:bake.appDir names (relative to the stack file):
 * the file processor the prod stack runs as its app.
 */
export function linkProdApp(stackDir: string): void {
  const app = path.join("worker", "examples", "file-processor");
  fs.mkdirSync(path.dirname(path.join(stackDir, app)), { recursive: true });
  fs.symlinkSync(path.join(REPO, app), path.join(stackDir, app));
}

/** Points the builder the fake launched at the stand-in host: its port, its login. */
function builderIsHost(host: () => BuilderHost | undefined): Step<BakeState> {
  return {
    name: "test-route-to-builder",
    title: "(test) route the builder's address to the stand-in host",
    async run(state) {
      const h = host();
      if (h && state.ssh) state.ssh = { ...h.target() };
    },
  };
}

/**
 * `bake()` of the prod stack in `stackDir` against the fake EC2, with fast polls, and the builder
 * the fake launches routed to `host` (a Debian root with its own sshd). `wrap` may replace any
 * step (to fail it, or press Ctrl-C during it); `extra` overrides any option.
 */
export async function bakeOnFake(
  fake: FakeEc2,
  stackDir: string,
  host: () => BuilderHost | undefined,
  extra: Partial<BakeOptions> & { wrap?: (step: Step<BakeState>) => Step<BakeState> } = {},
): Promise<{ result: BakeResult; output: string }> {
  let output = "";
  const { wrap = (s: Step<BakeState>) => s, ...options } = extra;
  const result = await bake({
    root: REPO,
    stackDir,
    stack: "prod",
    flags: { subnetId: fake.publicSubnetId },
    clients: { ec2: fake.ec2, ssm: fake.ssm },
    settings: { pollMs: 1, instanceTimeout: 5, imageTimeout: 5, sshTimeout: 20 },
    manifest: path.join(stackDir, "manifest.json"),
    adjustSteps: (steps) => steps.flatMap((s) => [wrap(s), ...(s.name === "run-builder" ? [builderIsHost(host)] : [])]),
    out: { write: (t) => void (output += t) },
    ...options,
  });
  return { result, output };
}
