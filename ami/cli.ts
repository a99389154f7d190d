import * as path from "node:path";
import { parseArgs } from "node:util";
import { reportConfigError } from "../infra/config-errors";
import { didYouMean } from "../infra/did-you-mean";
import { bake, BakeOptions, readKeyFile } from "./bake";

export const USAGE = `usage: npm run bake-ami -- --stack <stack> [options]

Bakes the worker image for a stack: launches a temporary builder, provisions it over SSH, cleans it,
snapshots an AMI, tears down everything it created, records the AMI in Pulumi.<stack>.yaml
(kiln:amiId) and prunes old images. Unchanged inputs reuse the last image instead of baking.

  --stack <name>          the stack whose Pulumi.<name>.yaml gives region and kiln:bake (required)
  --dry-run               print the plan: what would be created, the content hash, whether the
                          last image would be reused; creates nothing
  --force                 bake even when an image with the same content hash exists
  --on-error=<mode>       cleanup (default): undo everything on failure; abort: keep the builder,
                          key pair and security group for debugging, and print how to reach and reap them
  --reap                  terminate kiln builders older than the build deadline, with their key pairs
                          and security groups (with --dry-run: only list them)
  --json                  one JSON object per line, for CI logs
  --manifest <file>       where to write the bake manifest (default .kiln/bake-<stack>.json)

overrides of kiln:bake for this run:
  --region <region>       --instance-type <type>    --subnet <subnet-id>
  --base-image <ami-id or SSM parameter>            --ssh-cidr <cidr>
  --ssh-user <user>       --keep <n>                (images of the stack to keep)
  --ssh-interface <public_ip|private_ip|session_manager>
  deadlines, seconds:     --ssh-timeout <s>  --instance-timeout <s>  --image-timeout <s>  --request-timeout <s>

--target ssh: run only the builder-side steps (wait for SSH, upload, provision, validate, clean)
against an existing host, for debugging provisioning scripts (Packer's null builder):
  --target ssh --host <host> [--port 22] [--user root] --key <private key file>
  The clean step removes the host's SSH host keys and authorized_keys: use a throwaway host.

exit codes: 0 baked or reused, 1 failed, 2 bad usage, 3 image made and recorded but cleanup incomplete
(the summary lists what is left; --reap removes builders), 78 stack config error, 130 interrupted

docs/bake.md describes every step, setting and flag.`;

const OPTIONS = {
  stack: { type: "string" },
  "dry-run": { type: "boolean" },
  force: { type: "boolean" },
  "on-error": { type: "string" },
  reap: { type: "boolean" },
  json: { type: "boolean" },
  manifest: { type: "string" },
  region: { type: "string" },
  "instance-type": { type: "string" },
  subnet: { type: "string" },
  "base-image": { type: "string" },
  "ssh-cidr": { type: "string" },
  "ssh-user": { type: "string" },
  keep: { type: "string" },
  "ssh-interface": { type: "string" },
  "ssh-timeout": { type: "string" },
  "instance-timeout": { type: "string" },
  "image-timeout": { type: "string" },
  "request-timeout": { type: "string" },
  target: { type: "string" },
  host: { type: "string" },
  port: { type: "string" },
  user: { type: "string" },
  key: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

class UsageError extends Error {}

const SSH_INTERFACES = ["public_ip", "private_ip", "session_manager"] as const;

/** `value` if it is one of `allowed`, else a usage error naming the flag, the choices, and the likely one. */
function oneOf<T extends string>(flag: string, value: string, allowed: readonly T[], list = allowed.join(" or ")): T {
  const found = allowed.find((a) => a === value);
  if (found === undefined) throw new UsageError(`--${flag} must be ${list} (got ${JSON.stringify(value)})${suggest(didYouMean(value, allowed))}`);
  return found;
}

const suggest = (hint: string) => (hint ? `: ${hint.trim()}` : "");

/**
 * The flag parseArgs refused, as typed (`-stack` is reported as its first letter, `-s`), with the
 * flag it most likely meant: the same help a mistyped stack setting gets.
 */
function unknownFlag(argv: string[], reported: string): UsageError {
  const typed = argv.find((a) => a === reported || a.startsWith(`${reported}=`)) ?? argv.find((a) => /^-[^-]/.test(a) && a.startsWith(reported)) ?? reported;
  const name = typed.split("=")[0];
  return new UsageError(`unknown flag ${name}${suggest(didYouMean(name.replace(/^-+/, ""), Object.keys(OPTIONS), (k) => `--${k}`))}`);
}

/** Parses argv into bake options; every mistake names the flag. */
export function parseBakeArgs(argv: string[], root: string, out: BakeOptions["out"]): BakeOptions | "help" {
  let values;
  try {
    ({ values } = parseArgs({ args: argv, options: OPTIONS, strict: true, allowPositionals: false }));
  } catch (e) {
    const unknown = (e as NodeJS.ErrnoException).code === "ERR_PARSE_ARGS_UNKNOWN_OPTION" && /Unknown option '([^']+)'/.exec((e as Error).message);
    if (unknown) throw unknownFlag(argv, unknown[1]);
    throw new UsageError((e as Error).message.replace(/^TypeError \[\w+\]: /, ""));
  }
  if (values.help) return "help";
  if (!values.stack) throw new UsageError("--stack is required: the stack whose Pulumi.<stack>.yaml to bake for, e.g. --stack prod");
  const onError = oneOf("on-error", values["on-error"] ?? "cleanup", ["cleanup", "abort"] as const);
  const target = oneOf("target", values.target ?? "ec2", ["ec2", "ssh"] as const);
  const whole = (flag: string, v: string | undefined, min: number, max: number) => {
    if (v === undefined) return undefined;
    if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) throw new UsageError(`--${flag} must be a whole number from ${min} to ${max} (got ${JSON.stringify(v)})`);
    return Number(v);
  };
  const sshOnly = ["host", "port", "user", "key"] as const;
  let ssh: BakeOptions["ssh"];
  if (target === "ssh") {
    if (!values.host) throw new UsageError("--target ssh needs --host");
    if (!values.key) throw new UsageError("--target ssh needs --key, the private key file for --user");
    if (values.reap || values["dry-run"]) throw new UsageError("--target ssh cannot be combined with --reap or --dry-run");
    ssh = { host: values.host, port: whole("port", values.port, 1, 65535) ?? 22, user: values.user ?? "root", privateKey: readKeyFile(values.key) };
  } else {
    for (const f of sshOnly) if (values[f] !== undefined) throw new UsageError(`--${f} only applies with --target ssh`);
  }
  return {
    root,
    stack: values.stack,
    target,
    ssh,
    dryRun: values["dry-run"],
    force: values.force,
    onError,
    reap: values.reap,
    json: values.json,
    manifest: values.manifest && path.resolve(values.manifest),
    flags: {
      region: values.region,
      instanceType: values["instance-type"],
      subnetId: values.subnet,
      baseImage: values["base-image"],
      sshCidr: values["ssh-cidr"],
      sshUser: values["ssh-user"],
      keep: whole("keep", values.keep, 1, 100),
      sshInterface: values["ssh-interface"] === undefined ? undefined : oneOf("ssh-interface", values["ssh-interface"], SSH_INTERFACES, SSH_INTERFACES.join(", ")),
      sshTimeout: whole("ssh-timeout", values["ssh-timeout"], 10, 7200),
      instanceTimeout: whole("instance-timeout", values["instance-timeout"], 30, 3600),
      imageTimeout: whole("image-timeout", values["image-timeout"], 60, 86_400),
      requestTimeout: whole("request-timeout", values["request-timeout"], 5, 300),
    },
    trapSignals: true,
    out,
  };
}

export async function main(argv: string[], root = path.resolve(__dirname, "..")): Promise<number> {
  const out = { write: (t: string) => void process.stdout.write(t) };
  let opts;
  try {
    opts = parseBakeArgs(argv, root, out);
  } catch (e) {
    if (!(e instanceof UsageError) && !(e as Error).message.startsWith("--key")) throw e;
    process.stderr.write(`bake-ami: ${(e as Error).message}\n(npm run bake-ami -- --help lists every flag)\n`);
    return 2;
  }
  if (opts === "help") {
    out.write(USAGE + "\n");
    return 0;
  }
  try {
    return (await bake(opts)).exitCode;
  } catch (e) {
    const code = reportConfigError("bake-ami", e, (t) => void process.stderr.write(t));
    if (code !== undefined) return code;
    if (/is not a stack name|Pulumi\.[^ ]+\.yaml/.test((e as Error).message)) {
      process.stderr.write(`bake-ami: ${(e as Error).message}\n`);
      return 2;
    }
    throw e;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: Error) => {
      process.stderr.write(`bake-ami: ${e.stack ?? e.message}\n`);
      process.exit(1);
    },
  );
}
