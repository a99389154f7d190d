import { randomBytes } from "node:crypto";
import { promises as fs } from "node:fs";
import * as path from "node:path";

/** A variable systemd's EnvironmentFile= cannot carry as given. Names the variable, never its value. */
export class EnvFileError extends Error {
  constructor(readonly variable: string, problem: string) {
    super(`${variable} ${problem}`);
    this.name = "EnvFileError";
  }
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function isEnvName(name: string): boolean {
  return NAME.test(name);
}

/**
 * One value in systemd's EnvironmentFile= syntax: always double-quoted, with the four characters
 * systemd unescapes inside double quotes (" \ ` $) escaped; newlines and everything else stay
 * literal (env-file.c, as systemd's own write_env_var does). systemd needs only " and \ escaped;
 * escaping ` and $ as well makes the same file safe to source from sh when debugging an instance.
 * EnvironmentFile= expands no variables, so "$HOME" arrives as "$HOME".
 */
export function quoteEnvValue(value: string): string {
  return `"${value.replace(/["\\`$]/g, (c) => `\\${c}`)}"`;
}

/** The file's text: an optional comment header, then NAME="value" lines sorted by name. */
export function renderEnvFile(vars: Record<string, string>, header: string[] = []): string {
  // systemd before v254 continues a comment that ends in a backslash onto the next line, eating it.
  const lines = header.map((h) => `# ${h.replace(/[\r\n]/g, " ")}`.trimEnd().replace(/\\+$/, ""));
  for (const name of Object.keys(vars).sort()) {
    const value = vars[name];
    if (!isEnvName(name)) throw new EnvFileError(name, "is not a valid environment variable name");
    // systemd reads the file as a C string: a NUL would silently cut off the rest of the file.
    if (value.includes("\0")) throw new EnvFileError(name, "contains a NUL character, which no environment variable can hold");
    lines.push(`${name}=${quoteEnvValue(value)}`);
  }
  return lines.join("\n") + "\n";
}

export interface AtomicWriteHooks {
  /** Called with the temporary file's path once it is written and synced; tests crash here. */
  beforeRename?(tmp: string): void | Promise<void>;
}

const tempName = (file: string) => `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
const isOurTemp = (file: string, entry: string) => entry.startsWith(`.${path.basename(file)}.`) && entry.endsWith(".tmp");

/**
 * Replaces `file` so that a reader (systemd, at the worker's start) sees the old content or the new,
 * never a part: write a temporary file in the same directory with its final mode, fsync it, rename it
 * over the old one, fsync the directory so the rename itself survives a power cut. A crash before the
 * rename leaves the old file as it was; a temp file such a crash left behind is removed next time.
 */
export async function writeFileAtomic(file: string, content: string, mode: number, hooks: AtomicWriteHooks = {}): Promise<void> {
  const dir = path.dirname(file);
  await fs.mkdir(dir, { recursive: true });
  const tmp = path.join(dir, tempName(file));
  try {
    // Created with its final mode, so secrets are never readable by others, not even for a moment.
    const fh = await fs.open(tmp, "wx", mode);
    try {
      await fh.chmod(mode); // the process umask may have taken bits off `mode`
      await fh.writeFile(content, "utf8");
      await fh.sync();
    } finally {
      await fh.close();
    }
    await hooks.beforeRename?.(tmp);
    await fs.rename(tmp, file);
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw e;
  }
  await syncDirectory(dir);
  await removeStaleTemps(file, tmp);
}

async function syncDirectory(dir: string): Promise<void> {
  const fh = await fs.open(dir, "r");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function removeStaleTemps(file: string, justUsed: string): Promise<void> {
  const dir = path.dirname(file);
  for (const entry of await fs.readdir(dir)) {
    if (isOurTemp(file, entry) && path.join(dir, entry) !== justUsed) await fs.rm(path.join(dir, entry), { force: true });
  }
}
