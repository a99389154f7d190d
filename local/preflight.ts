import * as fs from "node:fs";
import * as path from "node:path";
import { UsageError } from "./usage-error";

/** Shell words `sh -c` runs without a program on PATH. */
const SHELL_BUILTINS = new Set(
  ("alias bg break cd command continue echo eval exec exit export false fg getopts hash jobs kill printf pwd read readonly " +
    "return set shift test times trap true type ulimit umask unalias unset wait . : [ if while until for case { ( ! time").split(" "),
);

/**
 * What a worker would find wrong at start, found before the fleet starts anything: a handler file
 * that is not there, a command or app whose program is not on PATH. Each throws one line naming
 * the flag, so a typo costs a second, not a fleet started, crashed and stopped.
 */
export function checkHandlerFile(flag: string, file: string): void {
  if (!fs.existsSync(file)) throw new UsageError(`${flag}: ${file} does not exist`);
  if (!fs.statSync(file).isFile()) throw new UsageError(`${flag}: ${file} is not a file`);
}

/** The first word of a `sh -c` command, when it names a program rather than shell syntax. */
export function programOf(command: string): string | undefined {
  const words = command.trim().split(/\s+/);
  let i = 0;
  // Leading NAME=value assignments set the program's environment.
  while (i < words.length && /^[A-Za-z_][A-Za-z0-9_]*=/.test(words[i])) i++;
  const word = words[i];
  if (!word || !/^[A-Za-z0-9_./+@%-]+$/.test(word) || SHELL_BUILTINS.has(word)) return undefined;
  return word;
}

export function checkProgram(flag: string, command: string, env: Record<string, string | undefined>): void {
  const program = programOf(command);
  if (!program) return;
  if (program.includes("/")) {
    const file = path.resolve(program);
    try {
      fs.accessSync(file, fs.constants.X_OK);
    } catch {
      throw new UsageError(`${flag}: ${program} does not exist or is not executable (the command runs through sh -c in ${process.cwd()})`);
    }
    return;
  }
  for (const dir of (env.PATH ?? "").split(path.delimiter).filter(Boolean)) {
    try {
      fs.accessSync(path.join(dir, program), fs.constants.X_OK);
      return;
    } catch {
      // Not in this directory.
    }
  }
  throw new UsageError(`${flag}: ${program} is not on PATH (the command runs through sh -c with this shell's PATH)`);
}
