import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { formatBatch, formatOperation, formatSave, IpvsadmParseError, parseList, parseSave, SaveParser, serviceArgs } from '../../src/reconcile/ipvsadm.js';
import type { Operation, TableService } from '../../src/reconcile/table.js';

// recorded with ipvsadm v1.31 against Debian 12's kernel in ../shared/ipvs-vm
const fixture = (name: string): string => readFileSync(new URL(`../fixtures/ipvsadm/${name}`, import.meta.url), 'utf8');

describe('parseSave on recorded `ipvsadm -S -n` output', () => {
  const table = parseSave(fixture('save-all-forms.txt'));
  const byKey = new Map(table.map((s) => [s.key, s]));

  it('reads every service', () => {
    expect(table.map((s) => s.key)).toEqual([
      'tcp 10.0.0.1:80',
      'tcp 10.0.0.1:443',
      'tcp 10.0.0.1:1002',
      'tcp 10.0.0.1:1004',
      'tcp 10.0.0.1:1005',
      'tcp 10.0.0.1:2000',
      'tcp 10.0.0.1:2001',
      'tcp 10.0.0.1:8080',
      'tcp 10.0.0.1:8081',
      'tcp 10.0.0.1:8082',
      'tcp 10.0.0.1:8083',
      'tcp 10.0.0.1:8084',
      'udp 10.0.0.1:53',
      'tcp [2001:db8::1]:80',
      'udp [2001:db8::1]:53',
      'fwmark 7',
      'fwmark 9',
      'fwmark 11 ipv6',
    ]);
  });

  it.each([
    ['tcp 10.0.0.1:80', { scheduler: 'wlc' }],
    ['tcp 10.0.0.1:443', { scheduler: 'wrr', persistence: { timeoutS: 300 } }],
    ['udp 10.0.0.1:53', { protocol: 'udp', scheduler: 'sh', persistence: { timeoutS: 60, netmask: '255.255.255.0' } }],
    ['udp [2001:db8::1]:53', { vip: '2001:db8::1', port: 53, scheduler: 'dh', persistence: { timeoutS: 120, netmask: '64' } }],
    ['tcp [2001:db8::1]:80', { scheduler: 'mh' }],
    ['fwmark 9', { fwmark: 9, scheduler: 'lc', persistence: { timeoutS: 360 } }],
    ['fwmark 11 ipv6', { fwmark: 11, scheduler: 'sed' }],
    ['tcp 10.0.0.1:1004', { scheduler: 'lblc', realServers: [] }],
  ])('%s: scheduler, persistence, netmask', (key, expected) => {
    expect(byKey.get(key)).toMatchObject(expected);
  });

  it.each([
    ['tcp 10.0.0.1:80', [['10.0.1.2', 80, 'dr', 1], ['10.0.1.3', 80, 'dr', 3]]],
    ['tcp 10.0.0.1:443', [['10.0.1.2', 443, 'tun', 2], ['10.0.1.3', 443, 'tun', 0]]],
    ['udp 10.0.0.1:53', [['10.0.1.2', 5353, 'nat', 1], ['10.0.1.3', 53, 'nat', 65535]]],
    ['tcp [2001:db8::1]:80', [['2001:db8::10', 80, 'dr', 1], ['2001:db8::11', 8080, 'nat', 2]]],
    ['fwmark 7', [['10.0.1.4', 0, 'dr', 1], ['10.0.1.5', 0, 'dr', 1]]],
    ['fwmark 11 ipv6', [['2001:db8::12', 0, 'dr', 1]]],
    ['tcp 10.0.0.1:8081', [['127.0.0.1', 8081, 'dr', 1]]],
    ['tcp 10.0.0.1:8083', [['127.0.0.1', 9000, 'nat', 1]]],
  ])('%s: real servers (-r, -g/-i/-m, -w)', (key, expected) => {
    expect(byKey.get(key)?.realServers.map((r) => [r.address, r.port, r.forward, r.weight])).toEqual(expected);
  });

  it('formats back to the same lines (minus --tun-type ipip, the default)', () => {
    expect(formatSave(table)).toBe(fixture('save-all-forms.txt').replaceAll(' --tun-type ipip', ''));
  });

  it('reads the empty table and tables after -E/-e edits', () => {
    expect(parseSave(fixture('save-empty.txt'))).toEqual([]);
    const edited = parseSave(fixture('save-after-edit.txt'));
    expect(edited[0]).toMatchObject({ scheduler: 'rr', persistence: { timeoutS: 30, netmask: '255.255.0.0' } });
    expect(edited[0]?.realServers[0]).toMatchObject({ forward: 'nat', weight: 9 });
    expect(edited[1]?.persistence).toBeUndefined();
    const restored = parseSave(fixture('save-after-restore-edit.txt'))[0];
    expect(restored?.scheduler).toBe('wlc');
    expect(restored).not.toHaveProperty('persistence');
    expect(byKey.get('tcp 10.0.0.1:80')).not.toHaveProperty('persistence');
  });

  it.each([
    ['-A -t 10.0.0.1:80 -s rr -p', { persistence: { timeoutS: 360 } }],
    ['-A -t 10.0.0.1:80 -s rr -b flag-1,flag-2 -p 30 --pe sip -o', { persistence: { timeoutS: 30 } }],
    ['-A --tcp-service 10.0.0.1:80 -s rr', { key: 'tcp 10.0.0.1:80' }],
  ])('accepts %s', (line, expected) => {
    expect(parseSave(line)[0]).toMatchObject(expected);
  });

  it('reads thresholds and tunnel options on real servers and skips SCTP services', () => {
    const t = parseSave(
      [
        '-A -t 10.0.0.1:80 -s wlc',
        '-a -t 10.0.0.1:80 -r 10.0.1.2:80 -i -w 4 --tun-type gue --tun-port 6080 --tun-nocsum -x 100 -y 50',
        '-A --sctp-service 10.0.0.1:80 -s rr',
        '-a --sctp-service 10.0.0.1:80 -r 10.0.1.2:80 -g -w 1',
      ].join('\n'),
    );
    expect(t).toHaveLength(1);
    expect(t[0]?.realServers).toEqual([{ address: '10.0.1.2', port: 80, forward: 'tun', weight: 4 }]);
  });

  it.each([
    ['-X -t 10.0.0.1:80 -s rr', /line 1: expected a line starting with -A or -a/],
    ['-A -t 10.0.0.1 -s rr', /"10.0.0.1" is not ADDRESS:PORT/],
    ['-A -t 10.0.0.1:80', /no -s scheduler/],
    ['-A -t 10.0.0.1:80 -s rr --bogus', /unknown option "--bogus"/],
    ['-a -t 10.0.0.1:80 -r 10.0.1.2:80 -g -w 1', /real server of tcp 10.0.0.1:80 before its -A line/],
    ['-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.0.1.2:80 -g -w x', /line 2: weight "x" is not a number/],
    ['-A -t 10.0.0.1:80 -s rr\n-A -t 10.0.0.1:80 -s rr', /listed twice/],
    ['-A -t 10.0.0.1:80 -s', /-s needs a value/],
  ])('rejects %j with a located error', (text, msg) => {
    expect(() => parseSave(text)).toThrow(IpvsadmParseError);
    expect(() => parseSave(text)).toThrow(msg);
  });
});

describe('SaveParser: the read-back parsed again, unchanged services reused', () => {
  const forms = fixture('save-all-forms.txt');

  it('gives what parseSave gives, on every recorded output, read after read', () => {
    const p = new SaveParser();
    for (const name of ['save-all-forms.txt', 'save-empty.txt', 'save-after-edit.txt', 'save-after-restore-edit.txt', 'save-all-forms.txt']) {
      expect(p.parse(fixture(name))).toEqual(parseSave(fixture(name)));
    }
  });

  it('returns the same objects for services whose lines did not change, and new ones for the changed service', () => {
    const p = new SaveParser();
    const first = p.parse(forms);
    const changed = forms.replace('-a -t 10.0.0.1:80 -r 10.0.1.3:80 -g -w 3', '-a -t 10.0.0.1:80 -r 10.0.1.3:80 -g -w 7');
    expect(changed).not.toBe(forms);
    const second = p.parse(changed);
    expect(second).toEqual(parseSave(changed));
    const at = (t: typeof first, key: string) => t.find((s) => s.key === key);
    expect(at(second, 'tcp 10.0.0.1:80')).not.toBe(at(first, 'tcp 10.0.0.1:80'));
    expect(at(second, 'tcp 10.0.0.1:80')?.realServers.find((r) => r.address === '10.0.1.3')?.weight).toBe(7);
    for (const s of first.filter((x) => x.key !== 'tcp 10.0.0.1:80')) expect(at(second, s.key)).toBe(s);
  });

  it('hands out frozen services, so a shared one cannot be changed behind the next read', () => {
    const svc = new SaveParser().parse(forms)[0] as TableService;
    expect(Object.isFrozen(svc) && Object.isFrozen(svc.realServers) && Object.isFrozen(svc.realServers[0])).toBe(true);
    expect(() => (svc.realServers as unknown[]).push({})).toThrow(TypeError);
  });

  it.each([
    ['-X -t 10.0.0.1:80 -s rr', /line 1: expected a line starting with -A or -a/],
    ['-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.0.1.2:80 -g -w x', /line 2: weight "x" is not a number/],
    ['-A -t 10.0.0.1:80 -s rr\n-A -t 10.0.0.1:80 -s rr', /line 2: service tcp 10.0.0.1:80 listed twice/],
    ['-A -t 10.0.0.2:80 -s rr\n-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.0.1.2:80 -g -w 1\n-A -t 10.0.0.1:80 -s wlc', /line 4: service tcp 10.0.0.1:80 listed twice/],
  ])('rejects %j with the same located error as parseSave, also after a good read', (text, msg) => {
    const p = new SaveParser();
    p.parse(forms);
    expect(() => p.parse(text)).toThrow(msg);
    expect(p.parse(forms)).toEqual(parseSave(forms));
  });

  it('reads a real server listed after another service (not what ipvsadm prints) like parseSave does', () => {
    const text = ['-A -t 10.0.0.1:80 -s rr', '-A -t 10.0.0.2:80 -s rr', '-a -t 10.0.0.1:80 -r 10.0.1.2:80 -g -w 1'].join('\n');
    const p = new SaveParser();
    expect(p.parse(text)).toEqual(parseSave(text));
    expect(p.parse(text)[0]?.realServers).toHaveLength(1);
  });
});

describe('formatOperation', () => {
  const svc: TableService = { key: 'udp [2001:db8::1]:53', protocol: 'udp', vip: '2001:db8::1', port: 53, scheduler: 'sh', persistence: { timeoutS: 60, netmask: '64' }, realServers: [] };
  it.each<[Operation, string]>([
    [{ kind: 'add_service', service: svc }, '-A -u [2001:db8::1]:53 -s sh -p 60 -M 64'],
    [{ kind: 'edit_service', service: { ...svc, persistence: undefined } as TableService }, '-E -u [2001:db8::1]:53 -s sh'],
    [{ kind: 'delete_service', key: 'tcp 10.0.0.1:80' }, '-D -t 10.0.0.1:80'],
    [{ kind: 'delete_service', key: 'fwmark 11 ipv6' }, '-D -f 11 -6'],
    [{ kind: 'add_real_server', serviceKey: 'tcp 10.0.0.1:80', realServer: { address: '10.0.1.2', port: 80, forward: 'dr', weight: 3 } }, '-a -t 10.0.0.1:80 -r 10.0.1.2:80 -g -w 3'],
    [{ kind: 'edit_real_server', serviceKey: 'fwmark 7', realServer: { address: '10.0.1.2', port: 0, forward: 'tun', weight: 0 } }, '-e -f 7 -r 10.0.1.2:0 -i -w 0'],
    [{ kind: 'add_real_server', serviceKey: 'fwmark 11 ipv6', realServer: { address: '2001:db8::12', port: 0, forward: 'nat', weight: 1 } }, '-a -f 11 -6 -r [2001:db8::12]:0 -m -w 1'],
    [{ kind: 'delete_real_server', serviceKey: 'udp [2001:db8::1]:53', address: '2001:db8::10', port: 53 }, '-d -u [2001:db8::1]:53 -r [2001:db8::10]:53'],
  ])('%j → %s', (op, line) => {
    expect(formatOperation(op)).toBe(line);
  });

  it('a batch is one line per operation, newline-terminated', () => {
    expect(formatBatch([{ kind: 'delete_service', key: 'fwmark 7' }, { kind: 'delete_service', key: 'udp 10.0.0.1:53' }])).toBe('-D -f 7\n-D -u 10.0.0.1:53\n');
  });

  it('refuses a key that is not a service key', () => {
    expect(() => serviceArgs('sctp 10.0.0.1:80')).toThrow(/not a virtual service key/);
  });
});

describe('parseList on recorded listings', () => {
  it('reads weight, active and inactive connections from `ipvsadm -L -n`', () => {
    const l = parseList(fixture('list.txt'));
    expect(l.get('tcp 10.0.0.1:80')?.get('10.0.1.3:80')).toEqual([3, 0, 0]);
    expect(l.get('udp 10.0.0.1:53')?.get('10.0.1.3:53')).toEqual([65535, 0, 0]);
    expect(l.get('fwmark 11 ipv6')?.get('[2001:db8::12]:0')).toEqual([1, 0, 0]);
    expect(l.get('tcp [2001:db8::1]:80')?.size).toBe(2);
    expect(l.get('tcp 10.0.0.1:1004')?.size).toBe(0);
    expect(l.size).toBe(18);
  });

  it('reads the five columns of --stats and --rate', () => {
    for (const f of ['list-stats.txt', 'list-rate.txt']) {
      const l = parseList(fixture(f));
      expect(l.size).toBe(18);
      expect(l.get('fwmark 7')?.get('10.0.1.5:0')).toEqual([0, 0, 0, 0, 0]);
    }
  });

  it('reads counters recorded with traffic (6 connections through IPVS NAT)', () => {
    const l = parseList(fixture('list-stats-traffic.txt'));
    expect(l.get('tcp 10.0.1.1:80')?.get('10.0.2.2:8080')).toEqual([3, 15, 12, 804, 693]);
    expect(l.get('tcp 10.0.1.1:80')?.get('10.0.3.2:8080')?.[0]).toBe(3);
  });

  it('reads non-zero counters', () => {
    const text = [
      'IP Virtual Server version 1.2.1 (size=4096)',
      'Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes',
      '  -> RemoteAddress:Port',
      'TCP  10.0.1.1:80                        12       72       48     4128     3390',
      '  -> 10.0.2.2:8080                       7       42       28     2408     1978',
    ].join('\n');
    expect(parseList(text).get('tcp 10.0.1.1:80')?.get('10.0.2.2:8080')).toEqual([7, 42, 28, 2408, 1978]);
  });

  it('rejects a line it cannot read', () => {
    expect(() => parseList('GRE  10.0.0.1:80 rr')).toThrow(/expected TCP, UDP, FWM or ->/);
  });
});
