/** edit distance, case-insensitive (a misspelt name is often only a wrong case) */
const distance = (a: string, b: string): number => {
  const x = a.toLowerCase();
  const y = b.toLowerCase();
  let prev = Array.from({ length: y.length + 1 }, (_, j) => j);
  for (let i = 1; i <= x.length; i++) {
    const row = [i];
    for (let j = 1; j <= y.length; j++) row.push(Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (x[i - 1] === y[j - 1] ? 0 : 1)));
    prev = row;
  }
  return prev[y.length]!;
};

/**
 * `; did you mean "DriverBound"?` for the candidate nearest a misspelt name (within a quarter of its length,
 * at least 2 edits), or '' when none is that near
 */
export const didYouMean = (word: unknown, candidates: Iterable<string>): string => {
  if (typeof word !== 'string' || word.length === 0 || word.length > 64) return '';
  let best: { name: string; d: number } | undefined;
  for (const c of candidates) {
    const d = distance(word, c);
    if (best === undefined || d < best.d) best = { name: c, d };
  }
  return best && best.d <= Math.max(2, Math.floor(best.name.length / 4)) ? `; did you mean ${JSON.stringify(best.name)}?` : '';
};
