import { formatDuration, formatTable } from '../../src/cli/table';

describe('formatTable', () => {
  test('pads every column but the last to its widest cell, two spaces apart', () => {
    expect(
      formatTable(
        ['NAME', 'STATE', 'NOTE'],
        [
          ['node-1', 'ready', ''],
          ['n2', 'draining', 'going away'],
        ],
      ),
    ).toBe('NAME    STATE     NOTE\n' + 'node-1  ready\n' + 'n2      draining  going away\n');
  });

  test('widths count code points, not UTF-16 units: an astral character is one', () => {
    expect(
      formatTable(
        ['A', 'B'],
        [
          ['café🙂', 'x'],
          ['a', 'y'],
        ],
      ),
    ).toBe('A      B\ncafé🙂  x\na      y\n');
  });

  test('control characters in a cell become spaces: a value cannot break the line', () => {
    expect(formatTable(['A'], [['one\ntwo\u001b[31m']])).toBe('A\none two [31m\n');
  });

  test('a missing cell is empty; no rows prints the header alone', () => {
    expect(formatTable(['A', 'B'], [['x']])).toBe('A  B\nx\n');
    expect(formatTable(['A', 'B'], [])).toBe('A  B\n');
  });
});

test('formatDuration: seconds, then minutes, hours and days with the next unit', () => {
  expect([0, 45_900, 725_000, 3 * 3600_000 + 120_000, 4 * 86400_000 + 3600_000, -5].map(formatDuration)).toEqual([
    '0s',
    '45s',
    '12m 5s',
    '3h 2m',
    '4d 1h',
    '0s',
  ]);
});
