/** node:util parseArgs's error as one line naming the flag at fault. */
export function describeParseError(e: unknown): string {
  const err = e as Error & { code?: string };
  const flag = /'(-[^' ]+)/.exec(err.message)?.[1] ?? "";
  if (err.code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") return `unknown flag ${flag} (see --help)`;
  if (err.code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE") {
    return /does not take an argument/.test(err.message) ? `${flag} takes no value (see --help)` : `${flag} needs a value (see --help)`;
  }
  if (err.code === "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL") {
    return `unexpected argument ${/'([^']*)'/.exec(err.message)?.[1] ?? ""}: every setting is a --flag (see --help)`;
  }
  return err.message;
}
