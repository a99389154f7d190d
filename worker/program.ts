import * as fs from "node:fs";
import * as path from "node:path";
import { WorkerConfigError } from "./settings";

/**
 * Finds, before the first message, what a shell command (WORKER_COMMAND, WORKER_APP) would fail to
 * run: a program that is not on PATH or not executable, or the script an interpreter is given that
 * does not exist. Found per message instead, every message would fail and the queue would drain
 * into the dead-letter queue. Commands this cannot read without a shell (variables, substitutions)
 * are left to run.
 */
export function checkProgram(variable: string, command: string, env: NodeJS.ProcessEnv, cwd = process.cwd()): void {
  const words = leadingWords(command);
  if (!words) return;
  let i = 0;
  // `exec prog`, `env [-i] [NAME=value...] prog`: the program is the word after.
  for (;;) {
    while (i < words.length && ASSIGNMENT.test(words[i])) i++;
    if (words[i] === "exec" || words[i] === "command") i++;
    else if (words[i] === "env") {
      i++;
      while (i < words.length && (words[i].startsWith("-") || ASSIGNMENT.test(words[i]))) i++;
    } else break;
  }
  const program = words[i];
  if (program === undefined || SHELL_WORDS.has(program)) return;

  // Without PATH, /bin/sh searches its own default.
  const found = resolveProgram(program, env.PATH ?? SHELL_DEFAULT_PATH, cwd);
  if (!found.ok) throw new WorkerConfigError(variable, `runs ${program}, which ${found.problem}`);

  const script = interpreterScript(path.basename(program), words.slice(i + 1));
  if (script === undefined) return;
  const scriptPath = path.resolve(cwd, script);
  if (!fs.existsSync(scriptPath)) {
    throw new WorkerConfigError(variable, `runs ${program} on ${script}, which does not exist${script === scriptPath ? "" : ` (${scriptPath})`}`);
  }
}

const SHELL_DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const ASSIGNMENT = /^[A-Za-z_][A-Za-z0-9_]*=/;

/** Builtins and keywords: nothing on PATH to check. */
const SHELL_WORDS = new Set(
  (". : [ [[ ! { break cd continue eval exit export false getopts if for while until case read readonly return set shift " +
    "test trap true ulimit umask unset wait echo printf kill pwd times alias type").split(" "),
);

/**
 * The command's first words as the shell would split them, up to the first that needs a shell to
 * expand (`$`, backquotes, globs, redirections, pipes, `;`): undefined when even the first does.
 */
function leadingWords(command: string): string[] | undefined {
  const words: string[] = [];
  let word = "";
  let inWord = false;
  for (let i = 0; i < command.length; i++) {
    const c = command[i];
    if (c === "'") {
      const end = command.indexOf("'", i + 1);
      if (end < 0) return words.length ? words : undefined;
      word += command.slice(i + 1, end);
      inWord = true;
      i = end;
    } else if (c === '"') {
      let j = i + 1;
      let quoted = "";
      for (; j < command.length && command[j] !== '"'; j++) {
        if (command[j] === "$" || command[j] === "`") return words.length ? words : undefined;
        if (command[j] === "\\" && j + 1 < command.length) j++;
        quoted += command[j];
      }
      word += quoted;
      inWord = true;
      i = j;
    } else if (c === "\\" && i + 1 < command.length) {
      word += command[++i];
      inWord = true;
    } else if (c === " " || c === "\t") {
      if (inWord) words.push(word);
      word = "";
      inWord = false;
    } else if (/[;&|<>()`$*?\n]/.test(c)) {
      // Past here the shell decides; a word cut short by it is not a word we can check.
      return words.length ? words : undefined;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (inWord) words.push(word);
  return words;
}

function executable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

function resolveProgram(program: string, searchPath: string, cwd: string): { ok: true } | { ok: false; problem: string } {
  if (program.includes("/")) {
    const file = path.resolve(cwd, program);
    if (!fs.existsSync(file)) return { ok: false, problem: "does not exist" };
    return executable(file) ? { ok: true } : { ok: false, problem: "is not an executable file" };
  }
  const dirs = searchPath.split(":").filter(Boolean);
  if (dirs.some((d) => executable(path.join(d, program)))) return { ok: true };
  return { ok: false, problem: `is not on PATH (${dirs.join(":") || "PATH is empty"})` };
}

/** Interpreters whose first operand is a script file, and their options that take a value. */
const INTERPRETERS: [RegExp, { inline: string[]; valued: string[] }][] = [
  [/^(ba|da|k|z)?sh$/, { inline: ["-c"], valued: ["-o", "+o"] }],
  [/^python[0-9.]*$/, { inline: ["-c", "-m"], valued: ["-W", "-X", "-Q"] }],
  [/^node(js)?$/, { inline: ["-e", "-p", "--eval", "--print", "-"], valued: ["-r", "--require", "--import", "--loader", "-C", "--conditions"] }],
  [/^ruby$/, { inline: ["-e"], valued: ["-I", "-r", "-C"] }],
  [/^perl$/, { inline: ["-e", "-E"], valued: ["-I", "-M", "-m"] }],
  [/^php$/, { inline: ["-r"], valued: ["-c", "-d"] }],
];

/** The script an interpreter would run, or undefined: not an interpreter, or code given inline. */
function interpreterScript(program: string, args: string[]): string | undefined {
  const known = INTERPRETERS.find(([name]) => name.test(program))?.[1];
  if (!known) return undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (known.inline.includes(a)) return undefined;
    if (known.valued.includes(a)) {
      i++;
      continue;
    }
    if (a === "--") return args[i + 1];
    if (a.startsWith("-")) continue;
    return a;
  }
  return undefined;
}
