/**
 * systemd 252's EnvironmentFile= parser (src/basic/env-file.c, parse_env_file_internal, as used by
 * load_env_file), transcribed state for state, so a test can read worker.env exactly as systemd will.
 * The real parser also runs in these tests, through systemd's environment.d generator; this copy
 * covers the one thing that generator does differently ($VAR expansion) and explains failures.
 */

const NEWLINE = "\n\r";
const WHITESPACE = " \t\n\r";
const COMMENTS = "#;";
const SHELL_NEED_ESCAPE = '"\\`$';

type State =
  | "PRE_KEY"
  | "KEY"
  | "PRE_VALUE"
  | "VALUE"
  | "VALUE_ESCAPE"
  | "SINGLE_QUOTE_VALUE"
  | "DOUBLE_QUOTE_VALUE"
  | "DOUBLE_QUOTE_VALUE_ESCAPE"
  | "COMMENT"
  | "COMMENT_ESCAPE";

export function parseSystemdEnvFile(contents: string): Map<string, string> {
  const env = new Map<string, string>();
  let state: State = "PRE_KEY";
  let key = "";
  let value = "";
  // Where trailing whitespace starts (-1: none), to chomp it as systemd does.
  let keyWs = -1;
  let valueWs = -1;

  const push = (chompValue: boolean) => {
    const k = keyWs >= 0 ? key.slice(0, keyWs) : key;
    env.set(k, chompValue && valueWs >= 0 ? value.slice(0, valueWs) : value);
    key = "";
    value = "";
  };

  for (const c of contents) {
    // A NUL ends a C string: systemd never sees what follows.
    if (c === "\0") break;
    switch (state) {
      case "PRE_KEY":
        if (COMMENTS.includes(c)) state = "COMMENT";
        else if (!WHITESPACE.includes(c)) {
          state = "KEY";
          keyWs = -1;
          key += c;
        }
        break;
      case "KEY":
        if (NEWLINE.includes(c)) {
          state = "PRE_KEY";
          key = "";
        } else if (c === "=") {
          state = "PRE_VALUE";
          valueWs = -1;
        } else {
          if (!WHITESPACE.includes(c)) keyWs = -1;
          else if (keyWs === -1) keyWs = key.length;
          key += c;
        }
        break;
      case "PRE_VALUE":
        if (NEWLINE.includes(c)) {
          state = "PRE_KEY";
          push(false);
        } else if (c === "'") state = "SINGLE_QUOTE_VALUE";
        else if (c === '"') state = "DOUBLE_QUOTE_VALUE";
        else if (c === "\\") state = "VALUE_ESCAPE";
        else if (!WHITESPACE.includes(c)) {
          state = "VALUE";
          value += c;
        }
        break;
      case "VALUE":
        if (NEWLINE.includes(c)) {
          state = "PRE_KEY";
          push(true);
        } else if (c === "\\") {
          state = "VALUE_ESCAPE";
          valueWs = -1;
        } else {
          if (!WHITESPACE.includes(c)) valueWs = -1;
          else if (valueWs === -1) valueWs = value.length;
          value += c;
        }
        break;
      case "VALUE_ESCAPE":
        state = "VALUE";
        if (!NEWLINE.includes(c)) value += c;
        break;
      case "SINGLE_QUOTE_VALUE":
        if (c === "'") state = "PRE_VALUE";
        else value += c;
        break;
      case "DOUBLE_QUOTE_VALUE":
        if (c === '"') state = "PRE_VALUE";
        else if (c === "\\") state = "DOUBLE_QUOTE_VALUE_ESCAPE";
        else value += c;
        break;
      case "DOUBLE_QUOTE_VALUE_ESCAPE":
        state = "DOUBLE_QUOTE_VALUE";
        if (SHELL_NEED_ESCAPE.includes(c)) value += c;
        else if (c !== "\n") value += `\\${c}`;
        break;
      case "COMMENT":
        if (c === "\\") state = "COMMENT_ESCAPE";
        else if (NEWLINE.includes(c)) state = "PRE_KEY";
        break;
      case "COMMENT_ESCAPE":
        // Before v254 the character after a backslash, a newline included, stays in the comment.
        state = "COMMENT";
        break;
    }
  }
  if (["PRE_VALUE", "VALUE", "VALUE_ESCAPE", "SINGLE_QUOTE_VALUE", "DOUBLE_QUOTE_VALUE", "DOUBLE_QUOTE_VALUE_ESCAPE"].includes(state)) {
    push(state === "VALUE");
  }
  return env;
}
