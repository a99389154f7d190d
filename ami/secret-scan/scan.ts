/**
 * The image's secret scan, run on the builder with kiln's Node (bundled by ./bundle.ts and fed to
 * `node -` on stdin, so nothing of it lands on the builder's disk): secretlint's recommended preset
 * over every text file below the given directories and every home directory. It prints where it found
 * something (file, line, rule), never what: the bake's output is kept in CI logs.
 *
 *   node - [--ignore-file F] [--max-bytes N] DIR...
 *
 * Output lines: "found <path>:<line>:<column> <rule> <message id>" per finding, then one summary line.
 * Exit 0 nothing found, 3 something found, 2 usage.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { lintSource } from "@secretlint/core";
import { creator as recommended } from "@secretlint/secretlint-rule-preset-recommend";

/** Package managers' databases: large, written by the distribution, never where a secret is left. */
const SKIPPED_TREES = ["/var/lib/apt/lists", "/var/lib/dpkg", "/var/lib/rpm", "/var/lib/dnf", "/var/lib/yum", "/var/lib/snapd", "/var/lib/systemd/catalog"];
/** A text file's head holds no NUL byte (git's test for binary files). */
const SNIFF_BYTES = 8000;
/** Larger files are listed, not read: logs and data a clean image has emptied or never holds. */
const DEFAULT_MAX_BYTES = 16 << 20;
/** Homes of system accounts that are system directories, not homes. */
const NOT_HOMES = /^\/(bin|sbin|usr|dev|proc|sys|run|var\/run|nonexistent)?(\/|$)/;

export interface Finding {
  file: string;
  line: number;
  column: number;
  rule: string;
  messageId: string;
}

export interface ScanResult {
  findings: Finding[];
  scanned: number;
  skipped: { binary: number; large: string[]; ignored: number };
}

/** Home directories from /etc/passwd below `root` (normally "/"), /root and /home/*. */
export function homeDirectories(root = "/"): string[] {
  const homes = new Set(["/root"]);
  try {
    for (const entry of fs.readdirSync(path.join(root, "home"))) homes.add(`/home/${entry}`);
  } catch {
    /* no /home */
  }
  try {
    for (const line of fs.readFileSync(path.join(root, "etc/passwd"), "utf8").split("\n")) {
      const home = line.split(":")[5];
      if (home && home !== "/" && !NOT_HOMES.test(home)) homes.add(home);
    }
  } catch {
    /* no passwd */
  }
  return [...homes].sort();
}

/** Ignore-file lines: absolute paths, a directory's ending in "/"; "#" starts a comment. */
export function readIgnoreFile(file: string | undefined): string[] {
  if (!file || !fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, "utf8")
    .split("\n")
    .map((l) => l.replace(/#.*/, "").trim())
    .filter((l) => l.startsWith("/"));
}

const ignored = (file: string, ignores: string[]) => ignores.some((i) => (i.endsWith("/") ? file.startsWith(i) : file === i));

/** Every regular file below `dirs`, on each directory's own file system, no symlink followed. */
function* files(dirs: string[], skip: string[]): Generator<string> {
  const seen = new Set<string>();
  for (const dir of dirs) {
    let top: fs.Stats;
    try {
      top = fs.lstatSync(dir);
    } catch {
      continue;
    }
    if (!top.isDirectory()) continue;
    const stack = [dir];
    while (stack.length) {
      const current = stack.pop()!;
      if (seen.has(current) || skip.some((s) => current === s || current.startsWith(`${s}/`))) continue;
      seen.add(current);
      let entries: fs.Dirent[];
      try {
        entries = fs.readdirSync(current, { withFileTypes: true });
      } catch {
        continue;
      }
      for (const e of entries) {
        const full = path.join(current, e.name);
        if (e.isDirectory()) {
          try {
            if (fs.lstatSync(full).dev === top.dev) stack.push(full);
          } catch {
            /* gone */
          }
        } else if (e.isFile() && !seen.has(full)) {
          seen.add(full);
          yield full;
        }
      }
    }
  }
}

/**
 * An AWS secret access key whose last character is `+`, `/` or `=`, quoted or not, with no word
 * character after it: the preset's AWS rule ends its pattern with `\b`, which needs a word character
 * on one side, so it misses these (2 in 64 real keys end so). Only that case is checked here; the
 * preset reports the rest, so no key is reported twice.
 */
const AWS_SECRET_PRESET_MISSES = /["']?(?:AWS|aws|Aws)?_?(?:SECRET|secret|Secret)_?(?:ACCESS|access|Access)_?(?:KEY|key|Key)["']?\s*(?::|=>|=)\s*["']?([A-Za-z0-9/+=]{39}[/+=])["']?(?![\w/+=])/g;

function presetMisses(content: string): { line: number; column: number }[] {
  const out: { line: number; column: number }[] = [];
  for (const m of content.matchAll(AWS_SECRET_PRESET_MISSES)) {
    const at = (m.index ?? 0) + m[0].lastIndexOf(m[1]);
    const before = content.slice(0, at);
    out.push({ line: before.split("\n").length, column: at - before.lastIndexOf("\n") });
  }
  return out;
}

/** Scans `dirs` with secretlint's recommended preset, and the one AWS key shape it misses. */
export async function scan(dirs: string[], opts: { ignores?: string[]; maxBytes?: number; skip?: string[] } = {}): Promise<ScanResult> {
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_BYTES;
  const ignores = opts.ignores ?? [];
  const result: ScanResult = { findings: [], scanned: 0, skipped: { binary: 0, large: [], ignored: 0 } };
  const config = { rules: [{ id: "@secretlint/secretlint-rule-preset-recommend", rule: recommended }] };
  for (const file of files(dirs, opts.skip ?? SKIPPED_TREES)) {
    if (ignored(file, ignores)) {
      result.skipped.ignored++;
      continue;
    }
    let content: Buffer;
    try {
      const size = fs.statSync(file).size;
      const head = readHead(file);
      if (head.includes(0)) {
        result.skipped.binary++;
        continue;
      }
      if (size > maxBytes) {
        result.skipped.large.push(file);
        continue;
      }
      content = size <= head.length ? head : fs.readFileSync(file);
    } catch {
      continue;
    }
    result.scanned++;
    const text = content.toString("utf8");
    const r = await lintSource({
      source: { filePath: file, content: text, contentType: "text" },
      options: { config, maskSecrets: true },
    });
    for (const m of r.messages) {
      result.findings.push({ file, line: m.loc.start.line, column: m.loc.start.column + 1, rule: m.ruleId, messageId: m.messageId });
    }
    for (const at of presetMisses(text)) result.findings.push({ file, ...at, rule: "kiln/aws-secret-key", messageId: "AWSSecretAccessKey" });
  }
  return result;
}

function readHead(file: string): Buffer {
  const fd = fs.openSync(file, "r");
  try {
    const buf = Buffer.alloc(SNIFF_BYTES);
    return buf.subarray(0, fs.readSync(fd, buf, 0, SNIFF_BYTES, 0));
  } finally {
    fs.closeSync(fd);
  }
}

export function formatFinding(f: Finding): string {
  return `found ${f.file}:${f.line}:${f.column} ${f.rule} ${f.messageId}`;
}

/** The program: what the bundle runs (main.ts). */
export async function main(argv: string[]): Promise<number> {
  const dirs: string[] = [];
  let ignoreFile: string | undefined;
  let maxBytes: number | undefined;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--ignore-file") ignoreFile = argv[++i];
    else if (argv[i] === "--max-bytes") maxBytes = Number(argv[++i]);
    else if (argv[i].startsWith("/")) dirs.push(argv[i]);
    else {
      process.stderr.write(`secret scan: unknown argument ${JSON.stringify(argv[i])}; usage: [--ignore-file F] [--max-bytes N] /DIR...\n`);
      return 2;
    }
  }
  const t0 = Date.now();
  const all = [...new Set([...dirs, ...homeDirectories()])];
  const r = await scan(all, { ignores: readIgnoreFile(ignoreFile), maxBytes });
  for (const f of r.findings) process.stdout.write(formatFinding(f) + "\n");
  const s = r.skipped;
  for (const file of s.large) process.stdout.write(`not scanned (too large): ${file}\n`);
  process.stdout.write(
    `secret scan: ${r.findings.length} finding(s) in ${r.scanned} text files under ${all.join(" ")} ` +
      `(${s.binary} binary, ${s.large.length} over ${((maxBytes ?? DEFAULT_MAX_BYTES) / 1048576).toFixed(0)} MiB, ${s.ignored} ignored) in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`,
  );
  return r.findings.length ? 3 : 0;
}
