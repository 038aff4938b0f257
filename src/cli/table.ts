/**
 * Aligned text columns for people (scripts use `--json`): a header row, then one line per row,
 * each column as wide as its widest cell (in code points), separated by two spaces; the last
 * column is not padded. Control characters in cells are replaced by spaces, so a value cannot
 * break a line or move the cursor.
 */
export function formatTable(headers: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const clean = (cell: string) => cell.replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ');
  const lines = [headers.map(clean), ...rows.map((row) => headers.map((_, i) => clean(row[i] ?? '')))];
  const widths = headers.map((_, i) => Math.max(...lines.map((line) => Array.from(line[i]).length)));
  return lines
    .map((line) =>
      line
        .map((cell, i) => (i === line.length - 1 ? cell : cell + ' '.repeat(widths[i] - Array.from(cell).length)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n')
    .concat('\n');
}

/** A duration for people: `45s`, `12m 5s`, `3h 2m`, `4d 1h`. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${s % 60}s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h ${m % 60}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}
