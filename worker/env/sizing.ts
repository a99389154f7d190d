/**
 * How much of the machine the worker may use, from the seeds' t3.medium sizing rules. Pure: the
 * machine is passed in, so the rules are tested for instance types this machine is not.
 */

export interface Machine {
  vcpus: number;
  totalMemoryBytes: number;
}

/** The systemd resource limits of kiln-worker.service, as written into its sizing drop-in. */
export interface ResourceLimits {
  MemoryHigh: string;
  MemoryMax: string;
  CPUQuota: string;
}

/**
 * Stack-level overrides, read from the worker's environment in SSM (set them with
 * `pulumi config set --path 'kiln:env.KILN_MEMORY_MAX' 3G`). Values use systemd's own syntax.
 */
export const SIZING_OVERRIDES = {
  memoryMax: "KILN_MEMORY_MAX",
  memoryHigh: "KILN_MEMORY_HIGH",
  cpuQuota: "KILN_CPU_QUOTA",
} as const;

const MiB = 1024 * 1024;
/** Kernel, journald, sshd and friends (seeds: "システム予約"). */
const SYSTEM_RESERVE_MIB = 500;
/** The SSM and CloudWatch agents; the seeds leave them 300 MiB on small machines, 500 above 2 GiB. */
const OTHER_APPS_SMALL_MIB = 300;
const OTHER_APPS_MIB = 500;
const SMALL_MACHINE_MIB = 2048;
/** The seeds' "× 0.7": headroom for page cache, so the worker's files do not evict everything else. */
const WORKER_SHARE = 0.7;
/** Reclaim starts at 80% so the worker slows down under pressure before the OOM killer acts at 100%. */
const HIGH_OF_MAX = 0.8;
/**
 * A quarter of the CPUs stays free so a runaway handler cannot starve the SSM agent (how an operator
 * gets in) or journald. 2 vCPUs give 150%, the seeds' t3.medium figure.
 */
const CPU_SHARE = 0.75;
/** On machines smaller than the reserves, still leave the worker something to start with. */
const MIN_MEMORY_MIB = 256;

/** Handlers running at once: one vCPU stays with the main process and the system (seeds: vCPUs − 1). */
export function defaultMaxWorkers(m: Machine): number {
  return Math.max(1, Math.floor(m.vcpus) - 1);
}

/** MemoryMax in MiB: (total − system reserve − other apps) × 0.7. */
export function memoryBudgetMib(m: Machine): number {
  const totalMib = m.totalMemoryBytes / MiB;
  const otherApps = totalMib <= SMALL_MACHINE_MIB ? OTHER_APPS_SMALL_MIB : OTHER_APPS_MIB;
  const budget = Math.floor((totalMib - SYSTEM_RESERVE_MIB - otherApps) * WORKER_SHARE);
  return Math.max(budget, Math.min(MIN_MEMORY_MIB, Math.floor(totalMib / 2)));
}

export function defaultLimits(m: Machine): ResourceLimits {
  const max = memoryBudgetMib(m);
  return {
    MemoryHigh: `${Math.floor(max * HIGH_OF_MAX)}M`,
    MemoryMax: `${max}M`,
    CPUQuota: `${Math.round(Math.max(1, m.vcpus) * 100 * CPU_SHARE)}%`,
  };
}

/** An override systemd would not parse: systemd would ignore it with a warning and run unlimited. */
export class SizingOverrideError extends Error {
  constructor(readonly variable: string, value: string, expected: string) {
    super(`${variable} must be ${expected} (got ${JSON.stringify(value)})`);
    this.name = "SizingOverrideError";
  }
}

// systemd's memory syntax: bytes with an optional 1024-based suffix, a percentage of RAM, or infinity.
const MEMORY = /^(\d+(?:\.\d+)?)([KMGT]?)$/;
const PERCENT = /^(\d+(?:\.\d{1,2})?)%$/;
const UNIT_POWER: Record<string, number> = { "": 0, K: 1, M: 2, G: 3, T: 4 };

function memoryValue(variable: string, raw: string): string {
  const v = raw.trim();
  if (v === "infinity" || MEMORY.test(v) || PERCENT.test(v)) return v;
  throw new SizingOverrideError(variable, raw, 'a size like "3G" or "2560M", a percentage of RAM like "70%", or "infinity"');
}

/** 80% of an overridden MemoryMax, in the same kind of unit, so an override of MemoryMax alone stays coherent. */
function highOf(max: string): string {
  if (max === "infinity") return max;
  const pct = PERCENT.exec(max);
  if (pct) return `${Math.floor(Number(pct[1]) * HIGH_OF_MAX * 100) / 100}%`;
  const [, n, unit] = MEMORY.exec(max)!;
  const bytes = Number(n) * 1024 ** UNIT_POWER[unit];
  return `${Math.floor((bytes * HIGH_OF_MAX) / MiB)}M`;
}

/** The machine's limits, with any stack override from the worker's environment taking precedence. */
export function resourceLimits(m: Machine, env: Record<string, string | undefined>): ResourceLimits {
  const limits = defaultLimits(m);
  const set = (name: string) => (env[name]?.trim() ? env[name]! : undefined);

  const max = set(SIZING_OVERRIDES.memoryMax);
  if (max !== undefined) {
    limits.MemoryMax = memoryValue(SIZING_OVERRIDES.memoryMax, max);
    limits.MemoryHigh = highOf(limits.MemoryMax);
  }
  const high = set(SIZING_OVERRIDES.memoryHigh);
  if (high !== undefined) limits.MemoryHigh = memoryValue(SIZING_OVERRIDES.memoryHigh, high);
  const quota = set(SIZING_OVERRIDES.cpuQuota);
  if (quota !== undefined) {
    const q = quota.trim();
    if (!PERCENT.test(q) || Number(q.slice(0, -1)) <= 0) {
      throw new SizingOverrideError(SIZING_OVERRIDES.cpuQuota, quota, 'a percentage of one CPU above 0, like "150%"');
    }
    limits.CPUQuota = q;
  }
  return limits;
}

/** The drop-in kiln-worker env writes at INSTALL.sizingDropIn; systemd applies it at the worker's start. */
export function renderSizingDropIn(limits: ResourceLimits, m: Machine): string {
  const gib = (m.totalMemoryBytes / 1024 ** 3).toFixed(1);
  return [
    `# Written by kiln-worker env at boot for this machine (${m.vcpus} vCPU, ${gib} GiB); rewritten at`,
    `# every boot. Override with ${Object.values(SIZING_OVERRIDES).join(", ")} in the stack's kiln:env.`,
    "[Service]",
    `MemoryHigh=${limits.MemoryHigh}`,
    `MemoryMax=${limits.MemoryMax}`,
    `CPUQuota=${limits.CPUQuota}`,
    "",
  ].join("\n");
}
