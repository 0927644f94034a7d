/**
 * cluster.mode ecmp, "same table everywhere", end to end (root, bird2): in the ECMP lab
 * (test/lab/ecmp.ts: a BIRD router, three directors each running vigil and BIRD, three
 * real servers) one director's health view is made to differ — nft in d1's namespace
 * drops every packet from real server r1, so only d1 sees r1 down — and the others must
 * name d1 once its table digest (carried in its heartbeats) has differed for longer than
 * the grace: /status peers[].table, vigil_ecmp_table_digest_mismatch{peer="d1"} = 1,
 * `vigil status` exit 11 with a line naming d1. Removing the rule clears all of it.
 *
 * Figures come from the daemons' own log lines (same host clock): d1's "real server
 * down" (its desired table, hence its digest, changes right then) to d2's "differs ...
 * for longer than the grace", and d1's "real server up" to d2's "no longer differs".
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StatusDoc } from '../../src/api/types.js';
import { EXIT } from '../../src/cli/client.js';
import { EcmpLab, haveBird } from '../lab/ecmp.js';
import { isRoot } from '../lab/netns.js';
import { API_PORT, CLI } from '../lab/vigil.js';

const root = isRoot();
const bird = haveBird();
if (!root) console.log('ecmp-table: skipped, network namespaces need root');
else if (!bird) console.log('ecmp-table: skipped, bird2 (bird, birdc) is not installed');

const ALL = ['d1', 'd2', 'd3'];
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface LogLine {
  time: string;
  msg: string;
  component?: string;
  peer?: string;
  realServer?: string;
  differsMs?: number;
}

describe.skipIf(!root || !bird)('ecmp mode: directors compare their forwarding tables', () => {
  let e: EcmpLab;

  beforeAll(async () => {
    e = await EcmpLab.create({ prefix: 'v16t' });
    await e.start();
    await e.waitNextHops(ALL, 120_000);
  }, 400_000);

  afterAll(async () => {
    await e?.destroy();
  }, 60_000);

  const status = async (name: string): Promise<StatusDoc> => {
    const s = await e.node(name).get('/status', 20);
    if (s === null) throw new Error(`${name}: /status did not answer; see ${e.node(name).logFile}`);
    return JSON.parse(s) as StatusDoc;
  };
  const tableOf = (doc: StatusDoc, peer: string) => doc.peers.find((p) => p.name === peer)?.table;
  /** Polls until every director's view of every peer satisfies `ok`; returns the last documents. */
  const waitTables = async (what: string, ok: (on: string, peer: string, t: NonNullable<StatusDoc['peers'][number]['table']>) => boolean, timeoutMs: number): Promise<Record<string, StatusDoc>> => {
    const deadline = Date.now() + timeoutMs;
    let docs: Record<string, StatusDoc> = {};
    for (;;) {
      docs = Object.fromEntries(await Promise.all(ALL.map(async (n) => [n, await status(n)] as const)));
      const good = ALL.every((on) => ALL.filter((p) => p !== on).every((p) => {
        const t = tableOf(docs[on]!, p);
        return t !== undefined && ok(on, p, t);
      }));
      if (good) return docs;
      if (Date.now() > deadline) {
        const view = ALL.map((on) => `${on} (own ${docs[on]?.table?.digest?.slice(7, 23)}): ${JSON.stringify(docs[on]?.peers.map((p) => [p.name, p.table]))}`).join('\n');
        throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${view}`);
      }
      await sleep(200);
    }
  };
  const logs = (name: string): LogLine[] =>
    readFileSync(e.node(name).logFile, 'utf8')
      .split('\n')
      .flatMap((l) => {
        try {
          return [JSON.parse(l) as LogLine];
        } catch {
          return [];
        }
      });
  const firstLog = (name: string, after: number, test: (l: LogLine) => boolean): LogLine | undefined => logs(name).find((l) => Date.parse(l.time) >= after && test(l));
  /** `vigil status` inside a director's namespace: exit status and output. */
  const vigilStatus = async (name: string): Promise<{ code: number; out: string }> => {
    const r = await e.lab.exec(e.lab.director(name).ns, ['env', `VIGIL_NODE=${name}`, 'node', CLI, 'status', '--events', '0', '--api', `http://127.0.0.1:${API_PORT}`], { allowFail: true, timeoutMs: 120_000 });
    return { code: r.exitCode ?? -1, out: r.stdout + r.stderr };
  };
  const mismatchGauge = async (on: string, peer: string): Promise<number | undefined> => {
    const text = await e.node(on).get('/metrics', 20);
    const m = new RegExp(`^vigil_ecmp_table_digest_mismatch\\{peer="${peer}"\\} (\\S+)$`, 'm').exec(text ?? '');
    return m ? Number(m[1]) : undefined;
  };

  it('every director carries the same table digest and sees its peers\' match', async () => {
    const docs = await waitTables('every peer\'s table to match', (_on, _p, t) => t.match === true, 60_000);
    const digests = new Set(ALL.map((n) => docs[n]!.table?.digest));
    expect(digests.size).toBe(1);
    expect([...digests][0]).toMatch(/^sha256:[0-9a-f]{64}$/);
    for (const on of ALL) {
      expect(docs[on]!.table?.announced).toBe(1);
      for (const p of ALL.filter((x) => x !== on)) {
        expect(tableOf(docs[on]!, p)).toMatchObject({ digest: docs[on]!.table!.digest!.slice(7, 23), announced: 1, match: true, mismatched: false });
        expect(await mismatchGauge(on, p)).toBe(0);
      }
    }
    // max(5 × 50 ms, 1 s) + the lab's probe interval 1000 ms + timeout 800 ms
    expect(docs.d1!.table?.graceMs).toBe(2800);
    const st = await vigilStatus('d2');
    expect(st.out).not.toMatch(/forwarding table of/);
  }, 180_000);

  it('a director whose health view differs is named by the others after the grace, exported and alerted on; restored, it is cleared', async () => {
    const r1 = e.lab.realServers[0]!.lanAddr;
    const grace = (await status('d2')).table!.graceMs;
    const t0 = Date.now();
    await e.lab.dropFrom('d1', r1);

    // d2 and d3 name d1 (and only d1); d1 names both of them
    const named = await waitTables(
      'd2 and d3 to name d1',
      (on, p, t) => (on === 'd1' || p === 'd1' ? t.mismatched : t.match === true && !t.mismatched),
      60_000,
    );
    for (const on of ['d2', 'd3']) {
      expect(tableOf(named[on]!, 'd1')).toMatchObject({ match: false, mismatched: true, digest: named.d1!.table!.digest!.slice(7, 23) });
      expect(await mismatchGauge(on, 'd1')).toBe(1);
    }
    expect(await mismatchGauge('d2', 'd3')).toBe(0);
    expect(await mismatchGauge('d1', 'd2')).toBe(1);

    // the figures, from the daemons' own clocks
    const down = firstLog('d1', t0, (l) => l.msg === 'real server down' && String(l.realServer).startsWith(`${r1}:`));
    const name2 = firstLog('d2', t0, (l) => l.peer === 'd1' && /differs from ours for longer than the grace/.test(l.msg));
    const name3 = firstLog('d3', t0, (l) => l.peer === 'd1' && /differs from ours for longer than the grace/.test(l.msg));
    expect(down, 'd1 logged r1 down').toBeDefined();
    expect(name2, 'd2 logged the mismatch').toBeDefined();
    expect(name3, 'd3 logged the mismatch').toBeDefined();
    const after2 = Date.parse(name2!.time) - Date.parse(down!.time);
    const after3 = Date.parse(name3!.time) - Date.parse(down!.time);
    console.log(`ecmp-table: r1 down on d1 ${Date.parse(down!.time) - t0} ms after the nft rule; d1 named by d2 ${after2} ms and by d3 ${after3} ms after its digest changed (grace ${grace} ms; differed ${name2!.differsMs} / ${name3!.differsMs} ms by their own clocks)`);
    // never before the grace; within it plus a generous margin on a loaded machine
    expect(name2!.differsMs).toBeGreaterThan(grace);
    expect(after2).toBeGreaterThanOrEqual(grace);
    expect(after3).toBeGreaterThanOrEqual(grace);
    expect(after2).toBeLessThan(grace + 10_000);
    expect(after3).toBeLessThan(grace + 10_000);

    // vigil status on d2: exit 11, one line naming d1; on d1: the real server it sees down (10) first
    const s2 = await vigilStatus('d2');
    expect(s2.out).toMatch(/^ {2}! forwarding table of d1 differs from d2's \(digest [0-9a-f]{16}, here [0-9a-f]{16}\): their health views or configs disagree$/m);
    expect(s2.out).not.toMatch(/forwarding table of d3/);
    expect(s2.code, s2.out).toBe(EXIT.tableMismatch);
    const s1 = await vigilStatus('d1');
    expect(s1.out).toMatch(/forwarding table of d2 differs/);
    expect(s1.out).toMatch(/forwarding table of d3 differs/);
    expect(s1.code, s1.out).toBe(EXIT.realServerDown);

    // restore: d1 sees r1 again, its digest equals the others', the names are cleared
    const t1 = Date.now();
    await e.lab.clearFilters('d1');
    await waitTables('the mismatch to clear', (_on, _p, t) => t.match === true && !t.mismatched, 60_000);
    for (const on of ['d2', 'd3']) expect(await mismatchGauge(on, 'd1')).toBe(0);
    expect(await mismatchGauge('d1', 'd2')).toBe(0);
    const clear2 = firstLog('d2', t1, (l) => l.peer === 'd1' && /no longer differs/.test(l.msg));
    expect(clear2, 'd2 logged the end of the mismatch').toBeDefined();
    // r1 is in both services (two probes): d1's digest is back once the last of them is up
    const ups = logs('d1').filter((l) => Date.parse(l.time) >= t1 && Date.parse(l.time) <= Date.parse(clear2!.time) && l.msg === 'real server up' && String(l.realServer).startsWith(`${r1}:`));
    expect(ups.length, 'd1 logged r1 up in both services before d2 cleared it').toBe(2);
    const back = Date.parse(ups.at(-1)!.time);
    console.log(`ecmp-table: r1 up on d1 in both services ${back - t1} ms after the rule was removed; d2 cleared d1 ${Date.parse(clear2!.time) - t1} ms after the rule was removed, ${Date.parse(clear2!.time) - back} ms after d1's digest was back`);
    expect(Date.parse(clear2!.time) - back).toBeLessThan(10_000);
    const s2after = await vigilStatus('d2');
    expect(s2after.out).not.toMatch(/forwarding table of/);
    expect(s2after.code, s2after.out).not.toBe(EXIT.tableMismatch);
  }, 400_000);
});
