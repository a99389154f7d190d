import { execFileSync } from "node:child_process";
import * as fs from "node:fs";

/**
 * Resident memory of process trees: what WORKER_MAX_RSS_MB measures, so that the memory of an app
 * or command the worker runs counts, not only the worker's own. Linux reads /proc; elsewhere (a
 * laptop running `npm run local`) `ps`.
 */
export interface ProcessInfo {
  ppid: number;
  rssBytes: number;
}

const PAGE_SIZE = pageSize();
const HAS_PROC = fs.existsSync("/proc/self/stat");

function pageSize(): number {
  try {
    // The kernel's own pages against Node's reading of the same memory, without asking getconf.
    const resident = Number(fs.readFileSync("/proc/self/statm", "utf8").split(" ")[1]);
    const size = process.memoryUsage.rss() / resident;
    for (const p of [4096, 16384, 65536]) if (Math.abs(size - p) / p < 0.2) return p;
  } catch {
    // Not Linux.
  }
  return 4096;
}

function readStat(pid: number): ProcessInfo | undefined {
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, "latin1");
  } catch {
    return undefined;
  }
  // The command name may hold spaces and parentheses: fields are counted from the last ")".
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return { ppid: Number(fields[1]), rssBytes: Number(fields[21]) * PAGE_SIZE };
}

/** Every process on the machine: pid → parent and resident memory. */
export function processTable(): Map<number, ProcessInfo> {
  const table = new Map<number, ProcessInfo>();
  if (HAS_PROC) {
    for (const entry of fs.readdirSync("/proc")) {
      if (!/^\d+$/.test(entry)) continue;
      const info = readStat(Number(entry));
      if (info) table.set(Number(entry), info);
    }
    return table;
  }
  const out = execFileSync("ps", ["-A", "-o", "pid=,ppid=,rss="], { encoding: "utf8" });
  for (const line of out.split("\n")) {
    const [pid, ppid, rssKb] = line.trim().split(/\s+/).map(Number);
    if (pid) table.set(pid, { ppid, rssBytes: rssKb * 1024 });
  }
  return table;
}

/** `root` and every process below it. */
export function descendants(table: Map<number, ProcessInfo>, root: number): number[] {
  const children = new Map<number, number[]>();
  for (const [pid, info] of table) {
    if (!children.has(info.ppid)) children.set(info.ppid, []);
    children.get(info.ppid)!.push(pid);
  }
  const tree: number[] = [];
  const stack = [root];
  while (stack.length) {
    const pid = stack.pop()!;
    if (!table.has(pid)) continue;
    tree.push(pid);
    stack.push(...(children.get(pid) ?? []));
  }
  return tree;
}

/** Resident memory of these processes now (cheap: one small read each on Linux). */
export function residentBytes(pids: number[], table?: Map<number, ProcessInfo>): number {
  let sum = 0;
  if (!HAS_PROC) table ??= processTable();
  for (const pid of pids) sum += (table ? table.get(pid) : readStat(pid))?.rssBytes ?? 0;
  return sum;
}
