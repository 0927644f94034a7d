/**
 * The BIRD files of cluster.mode ecmp parse with the real bird2 (`bird -p`): the
 * router example, and the director example including the file vigil generates
 * (renderInclude) with IPv4 and IPv6 VIPs and with none.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { renderInclude } from '../../src/ecmp/bird.js';
import { haveBird } from '../lab/ecmp.js';

const DEPLOY = resolve(import.meta.dirname, '..', '..', 'deploy');
const bird = haveBird();
if (!bird) console.log('ecmp-deploy: skipped, bird2 (bird, birdc) is not installed');

function parse(file: string): string {
  try {
    return execFileSync('bird', ['-p', '-c', file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const x = e as { stderr?: string };
    throw new Error(`bird -p -c ${file}: ${x.stderr ?? String(e)}`);
  }
}

describe.skipIf(!bird)('deploy/ BIRD examples (bird -p)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-ecmp-deploy-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('the upstream router example parses', () => {
    expect(parse(join(DEPLOY, 'routers', 'bird-router.conf'))).toBe('');
  });

  it.each([
    ['IPv4 and IPv6 VIPs', [{ address: '198.51.100.1' }, { address: '198.51.100.2' }, { address: '2001:db8::1' }]],
    ['no VIP (everything withdrawn)', []],
  ])('the director example parses with the generated include: %s', (_n, routes) => {
    const include = join(dir, 'bird-vips.conf');
    writeFileSync(include, renderInclude('vigil_vips', routes));
    const conf = readFileSync(join(DEPLOY, 'bird', 'director.conf'), 'utf8');
    expect(conf).toContain('include "/var/lib/vigil/bird-vips.conf";');
    const file = join(dir, 'bird.conf');
    writeFileSync(file, conf.replace('/var/lib/vigil/bird-vips.conf', include));
    expect(parse(file)).toBe('');
  });

  it('the include file refuses a broken route (so a bad VIP is caught by BIRD, not announced)', () => {
    const file = join(dir, 'broken.conf');
    writeFileSync(file, renderInclude('vigil_vips', [{ address: '198.51.100.300' }]));
    expect(() => parse(file)).toThrow(/bird -p -c .*broken\.conf/);
  });
});
