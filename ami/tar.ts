import * as fs from "node:fs";
import * as path from "node:path";
import { Readable } from "node:stream";

/**
 * A ustar archive of chosen files under `dir`, as a stream: the payload goes to the builder as one
 * tar through an SSH command's stdin, so file modes survive (SFTP's putDirectory drops them) and
 * the remote side needs nothing but tar. Written here rather than by the local `tar`, whose flavour
 * (GNU, bsdtar with macOS xattrs) would otherwise leak into what the builder extracts.
 * Owner root, directories 0755, files with their own mode bits.
 */
export function tarStream(dir: string, files: string[]): Readable {
  return Readable.from(entries(dir, files), { objectMode: false });
}

async function* entries(dir: string, files: string[]): AsyncGenerator<Buffer> {
  const dirs = new Set<string>();
  for (const file of files) {
    for (let d = path.posix.dirname(file); d !== "."; d = path.posix.dirname(d)) dirs.add(d);
  }
  for (const d of [...dirs].sort()) {
    const stat = fs.statSync(path.join(dir, d));
    yield header(`${d}/`, { mode: 0o755, size: 0, mtime: stat.mtimeMs, type: "5" });
  }
  for (const file of files) {
    const full = path.join(dir, file);
    const stat = fs.statSync(full);
    if (!stat.isFile()) throw new Error(`${full} is not a regular file`);
    yield header(file, { mode: stat.mode & 0o7777, size: stat.size, mtime: stat.mtimeMs, type: "0" });
    let sent = 0;
    for await (const chunk of fs.createReadStream(full, { highWaterMark: 1 << 20 })) {
      sent += (chunk as Buffer).length;
      yield chunk as Buffer;
    }
    if (sent !== stat.size) throw new Error(`${full} changed while it was being archived`);
    if (sent % 512) yield Buffer.alloc(512 - (sent % 512));
  }
  yield Buffer.alloc(1024);
}

function header(name: string, f: { mode: number; size: number; mtime: number; type: "0" | "5" }): Buffer {
  const b = Buffer.alloc(512);
  const [prefix, base] = splitName(name);
  b.write(base, 0, 100, "utf8");
  octal(b, 100, 8, f.mode);
  octal(b, 108, 8, 0);
  octal(b, 116, 8, 0);
  octal(b, 124, 12, f.size);
  octal(b, 136, 12, Math.floor(f.mtime / 1000));
  b.fill(" ", 148, 156);
  b.write(f.type, 156, 1, "ascii");
  b.write("ustar\u000000", 257, 8, "ascii");
  b.write("root", 265, 32, "ascii");
  b.write("root", 297, 32, "ascii");
  b.write(prefix, 345, 155, "utf8");
  let sum = 0;
  for (const byte of b) sum += byte;
  b.write(sum.toString(8).padStart(6, "0") + "\u0000 ", 148, 8, "ascii");
  return b;
}

/** ustar keeps a path in two fields: up to 155 bytes of directories, then up to 100 of name. */
function splitName(name: string): [string, string] {
  if (Buffer.byteLength(name) <= 100) return ["", name];
  for (let i = name.indexOf("/"); i !== -1; i = name.indexOf("/", i + 1)) {
    const prefix = name.slice(0, i);
    const rest = name.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(rest) <= 100) return [prefix, rest];
  }
  throw new Error(`path too long for a ustar archive: ${name}`);
}

function octal(b: Buffer, offset: number, width: number, value: number): void {
  const digits = value.toString(8);
  if (digits.length > width - 1) throw new Error(`value ${value} does not fit a ${width}-byte tar field`);
  b.write(digits.padStart(width - 1, "0") + "\u0000", offset, width, "ascii");
}
