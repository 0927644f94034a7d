import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { nextIncarnation, startIncarnation } from '../../src/cluster/incarnation.js';
import { tmpDir } from '../helpers/daemon.js';

const logger = pino({ level: 'silent' });
const NOW = 1_790_000_000_000_000n; // µs

describe('nextIncarnation', () => {
  it.each<[string, bigint | undefined, bigint]>([
    ['nothing stored: the clock', undefined, NOW],
    ['an older one stored: the clock', NOW - 5_000_000n, NOW],
    ['the clock stepped back below the stored one: stored + 1', NOW + 3_600_000_000n, NOW + 3_600_000_001n],
    ['the same value stored: stored + 1', NOW, NOW + 1n],
  ])('%s', (_name, stored, want) => {
    expect(nextIncarnation(stored, NOW)).toBe(want);
  });
});

describe('startIncarnation (cluster.state_file)', () => {
  it('stores each start’s incarnation, so the next start is above it even with the clock behind', () => {
    const file = join(tmpDir('vigil-inc-'), 'incarnation');
    expect(startIncarnation(file, NOW, logger)).toBe(NOW);
    expect(readFileSync(file, 'utf8')).toBe(`${NOW}\n`);
    // restarted with the wall clock an hour behind
    expect(startIncarnation(file, NOW - 3_600_000_000n, logger)).toBe(NOW + 1n);
    expect(startIncarnation(file, NOW - 3_600_000_000n, logger)).toBe(NOW + 2n);
    expect(readFileSync(file, 'utf8')).toBe(`${NOW + 2n}\n`);
  });

  it('starts from the clock when the file holds something else, and rewrites it', () => {
    const file = join(tmpDir('vigil-inc-'), 'incarnation');
    writeFileSync(file, 'garbage\n');
    expect(startIncarnation(file, NOW, logger)).toBe(NOW);
    expect(readFileSync(file, 'utf8')).toBe(`${NOW}\n`);
  });

  it('names the file and the reason when it cannot be read or written', () => {
    const dir = tmpDir('vigil-inc-');
    const asDir = join(dir, 'is-a-directory');
    mkdirSync(asDir);
    expect(() => startIncarnation(asDir, NOW, logger)).toThrow(/cluster\.state_file .*is-a-directory: cannot read \(EISDIR\)/);
    expect(() => startIncarnation(join(dir, 'missing-dir', 'incarnation'), NOW, logger)).toThrow(/cluster\.state_file .*missing-dir\/incarnation: cannot write \(ENOENT\).*StateDirectory/);
  });
});
