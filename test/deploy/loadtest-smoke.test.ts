import fs from 'node:fs';
import { runLoadtest, SCRIPTS } from '../../loadtest/run';

/**
 * `npm run loadtest:smoke` as a test: a private redis-server, three engine processes, the
 * load-test workers and real k6 (scripts/install-k6.sh builds it) for every script, a few
 * seconds each. Needs redis-server and k6; says how to install either when it is missing.
 */
describe('k6 load tests, smoke profile, against a three-node cluster', () => {
  test('every script runs, k6 exits 0, every threshold and fan-out / queue count holds', async () => {
    const lines: string[] = [];
    const report = await runLoadtest({ profile: 'smoke', log: (line) => lines.push(line) });

    expect(report.outcomes.map((o) => o.script)).toEqual([...SCRIPTS]);
    for (const outcome of report.outcomes) {
      const failed = outcome.thresholds.filter((t) => !t.passed).map((t) => `${t.metric}: ${t.expression}`);
      expect({ script: outcome.script, exitCode: outcome.exitCode, failed }).toEqual({
        script: outcome.script,
        exitCode: 0,
        failed: [],
      });
      expect(outcome.thresholds.length).toBeGreaterThan(0);
      for (const check of outcome.derived)
        expect({ script: outcome.script, check: check.name, value: check.value, passed: check.passed }).toMatchObject({
          passed: true,
        });
    }
    expect(report.outcomes.find((o) => o.script === 'stream-fanout')!.derived).toHaveLength(1);
    expect(report.outcomes.find((o) => o.script === 'queue')!.derived).toHaveLength(1);
    expect(report.passed).toBe(true);
    expect(fs.readFileSync(report.summaryPath, 'utf8')).toMatch(/\| queue \| 0 \| 5\/5 passed \|/);
  }, 240_000);
});
