export function table(header: string[], rows: (string | number)[][], align?: ('l' | 'r')[]): string {
  const sep = header.map((_, i) => ((align?.[i] ?? 'r') === 'l' ? ':---' : '---:'));
  return [header, sep, ...rows.map((r) => r.map(String))].map((cells) => `| ${cells.join(' | ')} |`).join('\n');
}

export function fmtInt(value: number): string {
  return Number.isFinite(value) ? Math.round(value).toLocaleString('en-US') : 'n/a';
}

export function fmtMs(value: number): string {
  if (!Number.isFinite(value)) return 'n/a';
  return value < 10 ? value.toFixed(3) : value.toFixed(1);
}

export function fmtRatio(value: number): string {
  return Number.isFinite(value) ? `${value.toFixed(2)}×` : 'n/a';
}

export function fmtUs(value: number | undefined): string {
  return value !== undefined && Number.isFinite(value) ? value.toFixed(1) : 'n/a';
}

/** The per-run table folded away, after a line counting what failed (when anything did). */
export function perRunDetails(failed: number, noun: string, perRunTable: string): string[] {
  return [
    '',
    failed ? `**${failed} ${noun} failed during measuring windows** (see per-run table).\n` : '',
    '<details><summary>Per-run figures</summary>',
    '',
    perRunTable,
    '',
    '</details>',
  ];
}

/** A suite's markdown from its lines, never two blank lines in a row. */
export function joinSection(lines: string[]): string {
  return lines.filter((line, i, all) => !(line === '' && all[i - 1] === '')).join('\n');
}
