import { reportConfigError } from "../infra/config-errors";
import { onInterrupts } from "../local/interrupts";
import { GLOBAL_HELP, parseFlags } from "./args";
import type { Command, CommandContext } from "./command";
import { COMMANDS } from "./commands";
import { CallFailed, EXIT, NotFoundError, UsageError } from "./exit";
import type { OpsFleet } from "./fleet";
import type { OpsIo } from "./io";
import { loadStack, openFleet, readGlobals } from "./target";

const OVERVIEW = () => `usage: npm run kiln -- <command> --stack NAME [flags]     (or: npx kiln <command> ...)

The runbook as commands, against the deployed stack (your AWS credentials) or a running
\`npm run local\` fleet of it (found by itself, or --local).

commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(18)}${c.summary}`).join("\n")}

${GLOBAL_HELP}

exit codes: 0 ok, 1 a call failed, 2 bad flag or not applicable here, 3 check failed (smoke not
processed, doctor found problems), 4 stack or local fleet not found, 78 invalid stack file,
130 interrupted. \`kiln <command> --help\` says more about each; docs/ops.md has the runbook.`;

/** The command named by the leading words of argv ("dlq show"), and the rest of argv. */
function findCommand(argv: string[]): { command?: Command; rest: string[]; words: string[] } {
  const words: string[] = [];
  for (const a of argv) {
    if (a.startsWith("-")) break;
    words.push(a);
  }
  for (let n = Math.min(2, words.length); n > 0; n--) {
    const name = words.slice(0, n).join(" ");
    const command = COMMANDS.find((c) => c.name === name);
    if (command) return { command, rest: [...argv.slice(0, argv.indexOf(words[0])), ...argv.slice(argv.indexOf(words[0]) + n)], words };
  }
  return { rest: argv, words };
}

/** Runs one kiln command; resolves with its exit code. Never throws for anything a user can cause. */
export async function main(argv: string[], io: OpsIo, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const err = (text: string) => io.err.write(`kiln: ${text}\n`);
  const { command, rest, words } = findCommand(argv);
  if (!command) {
    if (words.length === 0 || words[0] === "help") {
      io.out.write(OVERVIEW() + "\n");
      return argv.length === 0 || argv.some((a) => a === "-h" || a === "--help") || words[0] === "help" ? EXIT.OK : EXIT.USAGE;
    }
    const group = COMMANDS.filter((c) => c.name.startsWith(words[0] + " "));
    if (group.length) {
      const which = words[1] ? `unknown command "${words.join(" ")}"` : `"${words[0]}" needs a subcommand`;
      err(`${which}: ${group.map((c) => c.name).join(", ")}`);
    } else {
      err(`unknown command "${words[0]}" (see kiln --help)`);
    }
    return EXIT.USAGE;
  }

  let fleet: OpsFleet | undefined;
  try {
    const values = parseFlags(rest, command.flags);
    if (values.help) {
      io.out.write(`${command.help}\n\n${GLOBAL_HELP}\n`);
      return EXIT.OK;
    }
    const g = readGlobals(values, env);
    let cfg: ReturnType<typeof loadStack> | undefined;
    const ctx: CommandContext = {
      values,
      g,
      io,
      env,
      cfg: () => (cfg ??= loadStack(g)),
      fleet: () => (fleet ??= openFleet(g, ctx.cfg())),
      say: (text) => {
        if (!g.json) io.out.write(text + "\n");
      },
      json: (doc) => {
        if (g.json) io.out.write(JSON.stringify(doc, null, 2) + "\n");
      },
    };
    const code = await command.run(ctx);
    return io.signal.aborted && code !== EXIT.OK ? EXIT.INTERRUPTED : code;
  } catch (e) {
    if (e instanceof UsageError) return err(e.message), EXIT.USAGE;
    if (e instanceof NotFoundError) return err(e.message), EXIT.NOT_FOUND;
    if (e instanceof CallFailed) return err(e.message), EXIT.FAILED;
    const config = reportConfigError("kiln", e, (t) => void io.err.write(t));
    if (config !== undefined) return config;
    err(`${command.name} failed unexpectedly: ${(e as Error).stack ?? String(e)}`);
    return EXIT.FAILED;
  } finally {
    fleet?.close();
  }
}

/** `npm run kiln` / `npx kiln`: the first Ctrl-C stops long work where it is, a second one exits at once. */
export function runCli(argv = process.argv.slice(2)): void {
  // The SDK's notice that it will need Node 22 from 2027, on every command under Node 20: the
  // README says so once. Other warnings still show.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
  const abort = new AbortController();
  // One Ctrl-C delivered twice must not cut a redrive off mid-batch: onInterrupts counts it once.
  onInterrupts(
    () => abort.abort(),
    () => process.exit(EXIT.INTERRUPTED),
  );
  const io: OpsIo = { out: process.stdout, err: process.stderr, signal: abort.signal };
  main(argv, io).then(
    (code) => {
      process.exitCode = code;
      // Pending sockets (a cancelled long poll) must not hold the exit.
      setTimeout(() => process.exit(code), 100).unref();
    },
    (e: Error) => {
      process.stderr.write(`kiln: ${e.stack ?? e.message}\n`);
      process.exit(EXIT.FAILED);
    },
  );
}

if (require.main === module) runCli();
