/** How kiln prints figures for people: durations, ages, rates, tables and progress bars. */

/** "4 h 16 min", "7 min 05 s", "42 s": the largest two units, the way a person says it. */
export function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "never";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
  // Past an hour, to the nearest minute: 2,099.97 minutes is 35 h 00 min, not 34 h 59 min.
  const m = Math.round(s / 60);
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ${String(m % 60).padStart(2, "0")} min`;
  return `${Math.floor(h / 24)} d ${String(h % 24).padStart(2, "0")} h`;
}

/** Hours with one decimal, as the seeds' runbooks write an ETA: "35.0 h". */
export function hours(seconds: number): string {
  return `${(seconds / 3600).toFixed(1)} h`;
}

/** A duration in both forms, "4 h 16 min (4.3 h)", once it is long enough for hours to help. */
export function longDuration(seconds: number): string {
  return seconds >= 3600 ? `${duration(seconds)} (${hours(seconds)})` : duration(seconds);
}

/** "3 min ago", from an ISO date or epoch milliseconds. */
export function ago(when: Date | string | number | undefined, now = Date.now()): string {
  if (when === undefined) return "-";
  const t = when instanceof Date ? when.getTime() : typeof when === "string" ? Date.parse(when) : when;
  if (!Number.isFinite(t)) return "-";
  return `${duration((now - t) / 1000)} ago`;
}

export function count(n: number | undefined): string {
  return n === undefined ? "-" : Math.round(n).toLocaleString("en-US");
}

export function perMinute(n: number | undefined): string {
  return n === undefined ? "-" : `${n >= 10 ? Math.round(n) : +n.toFixed(1)}/min`;
}

export function money(usd: number): string {
  return `$${usd >= 100 ? Math.round(usd).toLocaleString("en-US") : usd.toFixed(2)}`;
}

/**
 * A plain text table: a header row, columns padded to their widest cell, numbers right-aligned.
 * Cells that are undefined print as "-".
 */
export function table(headers: string[], rows: (string | number | undefined)[][]): string {
  const cells = rows.map((r) => headers.map((_, i) => (r[i] === undefined || r[i] === "" ? "-" : String(r[i]))));
  const numeric = headers.map((_, i) => rows.some((r) => typeof r[i] === "number") && rows.every((r) => r[i] === undefined || typeof r[i] === "number"));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i].length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => (numeric[i] ? c.padStart(widths[i]) : c.padEnd(widths[i])))
      .join("  ")
      .trimEnd();
  return [line(headers), ...cells.map(line)].join("\n");
}

/** Label/value lines with the values lined up. */
export function fields(rows: [string, string][], indent = "  "): string {
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${indent}${k.padEnd(width)}  ${v}`).join("\n");
}

/** `[#########-----------]  45%  1,234 / 2,741`: for long work on a terminal. */
export function progressBar(done: number, total: number, width = 30): string {
  const share = total > 0 ? Math.min(1, done / total) : 1;
  const full = Math.round(share * width);
  return `[${"#".repeat(full)}${"-".repeat(width - full)}] ${String(Math.floor(share * 100)).padStart(3)}%  ${count(done)} / ${count(total)}`;
}
