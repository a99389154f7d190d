/**
 * What is wrong with a stack's config, and how every command says so: `bake-ami`, `npm run local`
 * and the Pulumi program print the same text, and the two commands exit with the same code.
 */

/** EX_CONFIG from sysexits.h, the worker's own configuration-error exit (worker/contract.ts EXIT). */
export const CONFIG_ERROR_EXIT = 78;

/** A stack file whose values are wrong: every problem, each naming its key and what would be right. */
export class ConfigError extends Error {
  constructor(
    readonly stack: string,
    readonly problems: string[],
  ) {
    super(`Stack "${stack}" has invalid config (Pulumi.${stack}.yaml):\n` + problems.map((p) => `  - ${p}`).join("\n"));
    this.name = "ConfigError";
  }
}

/**
 * A stack file that is not even YAML (or not a Pulumi stack file): one line, `file:line:column:
 * what`, the way compilers report, so an editor can jump to it.
 */
export class StackFileError extends ConfigError {
  constructor(
    stack: string,
    readonly file: string,
    readonly line: number,
    readonly column: number,
    readonly what: string,
  ) {
    super(stack, [`${file}:${line}:${column}: ${what}`]);
    this.message = this.problems[0];
    this.name = "StackFileError";
  }
}

/**
 * Prints a stack config error as `<command>: <message>` and returns the exit code, or returns
 * undefined when `e` is some other error, for the caller to handle.
 */
export function reportConfigError(command: string, e: unknown, write: (text: string) => void): number | undefined {
  if (!(e instanceof ConfigError)) return undefined;
  write(`${command}: ${e.message}\n`);
  return CONFIG_ERROR_EXIT;
}
