/** Levenshtein distance, case-insensitive: how far a mistyped name is from a known one. */
export function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1].toLowerCase() === b[j - 1].toLowerCase() ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length];
}

/**
 * The known name a mistyped one most likely meant, or undefined when none is close: within two
 * edits (a third of the name's length for long names), or the one name it starts or ends short of.
 * Flags, stack keys and `kiln:bake` settings can all use it, so a typo gets the same help anywhere.
 */
export function closest(name: string, known: readonly string[]): string | undefined {
  let best: { k: string; d: number } | undefined;
  for (const k of known) {
    const d = editDistance(name, k);
    if (!best || d < best.d) best = { k, d };
  }
  if (best && best.d <= Math.max(2, Math.floor(name.length / 3))) return best.k;
  // A name said longer or shorter than it is (keepImages for keep, subnet for subnetId).
  const lower = name.toLowerCase();
  const sharing = known.filter((k) => Math.min(k.length, name.length) >= 4 && (lower.startsWith(k.toLowerCase()) || k.toLowerCase().startsWith(lower)));
  return sharing.length === 1 ? sharing[0] : undefined;
}

/** "did you mean X? " for a message, or "" when nothing is close. */
export function didYouMean(name: string, known: readonly string[], show: (k: string) => string = (k) => k): string {
  const k = closest(name, known);
  return k === undefined ? "" : `did you mean ${show(k)}? `;
}
