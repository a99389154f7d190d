import { strict as assert } from "node:assert";
import { builtinModules } from "node:module";
import * as fs from "node:fs";
import * as path from "node:path";
import * as esbuild from "esbuild";
import * as YAML from "yaml";
import { REPO } from "../support/pulumi-harness";

/**
 * `pulumi up` from a production install (`npm ci --omit=dev`): what the program loads at run time
 * must come from `dependencies`, and so must what loads the TypeScript. Pulumi's own TypeScript
 * support would use the project's typescript and ts-node only while they happen to be installed,
 * and otherwise its vendored TypeScript 3.8, which cannot read this code.
 */
describe("the Pulumi program from a production install", () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(REPO, "package.json"), "utf8"));
  const project = YAML.parse(fs.readFileSync(path.join(REPO, "Pulumi.yaml"), "utf8"));
  const packageName = (specifier: string) => specifier.split("/").slice(0, specifier.startsWith("@") ? 2 : 1).join("/");

  it("runs under a loader that is a runtime dependency, not Pulumi's TypeScript support", () => {
    const options = project.runtime.options;
    assert.equal(options.typescript, false, "Pulumi's ts-node path is off");
    const loader = /^--require (\S+)$/.exec(options.nodeargs)?.[1];
    assert.ok(loader, `nodeargs preloads a loader: ${options.nodeargs}`);
    assert.ok(packageName(loader) in pkg.dependencies, `${loader} is in dependencies`);
    assert.equal(pkg.main, "index.ts", "what Pulumi's runtime require()s");
  });

  it("imports, through every file it loads, only packages in dependencies (or Node's own)", async () => {
    const result = await esbuild.build({
      entryPoints: [path.join(REPO, pkg.main)],
      bundle: true,
      write: false,
      metafile: true,
      platform: "node",
      packages: "external",
      logLevel: "silent",
    });
    const imported = new Map<string, string[]>();
    for (const [file, input] of Object.entries(result.metafile.inputs)) {
      for (const i of input.imports) {
        // Relative imports esbuild lists as external are TypeScript's type-only ones, erased at run time.
        if (!i.external || i.path.startsWith(".") || i.path.startsWith("node:") || builtinModules.includes(i.path)) continue;
        const name = packageName(i.path);
        imported.set(name, [...(imported.get(name) ?? []), file]);
      }
    }
    assert.ok(imported.has("@pulumi/aws") && imported.has("@aws-sdk/client-ec2"), [...imported.keys()].join(", "));
    for (const [name, files] of imported) {
      assert.ok(name in pkg.dependencies, `${name} (imported by ${files.join(", ")}) must be in dependencies, not devDependencies`);
    }
    const local = Object.keys(result.metafile.inputs);
    assert.ok(!local.some((f) => f.startsWith("test/")), "the program loads no test code");
  });
});
