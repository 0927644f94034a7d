/**
 * authkeys: `auth <n>` picks the method used to sign; `<n> <method> [key]` lines list
 * the methods (sha1, md5 with a key; crc without). `#` starts a comment line.
 */
import { Ledger, splitLines, type SourceLine } from './ledger.js';

export interface AuthKey {
  method: 'sha1' | 'md5';
  key: string;
  src: SourceLine;
}

export interface Authkeys {
  /** The key to carry over, when the selected method has one. */
  key?: AuthKey;
  /** Why there is no key (crc, missing auth line, ...). */
  refused?: string;
}

/** Each authkeys line and what it becomes; docs/import-authkeys.md is generated from it. */
export const AUTHKEYS_LINES: { line: string; becomes?: string; refused?: string }[] = [
  { line: 'auth N', becomes: 'selects method N; the other methods listed are reported as unused (vigil uses one key)' },
  { line: 'N sha1 KEY', becomes: 'KEY written to `cluster.key_file` (mode 0600), used for HMAC-SHA256 (a key under 16 characters reported)' },
  { line: 'N md5 KEY', becomes: 'as sha1' },
  { line: 'N crc', refused: 'crc authenticates nothing; the output has no key_file and does not validate until one is made' },
  { line: 'N <other method>', refused: 'Heartbeat knows sha1, md5 and crc only' },
];

export const CRC_REFUSED =
  'crc authenticates nothing (anyone on the link can forge heartbeats and take the VIPs); vigil signs every frame with HMAC-SHA256 and needs a real key: create one with `head -c 32 /dev/urandom | base64 > /etc/vigil/cluster.key; chmod 600 /etc/vigil/cluster.key`, copy it to every node and set cluster.key_file';

export function parseAuthkeys(text: string, file: string, ledger: Ledger): Authkeys {
  const lines = splitLines(text, file, { comment: 'leading' });
  ledger.register(lines);
  let auth: { id: string; src: SourceLine } | undefined;
  const methods = new Map<string, { method: string; key: string; src: SourceLine }>();
  for (const src of lines) {
    const m = /^(\S+)\s+(\S+)(?:\s+(.*))?$/.exec(src.text);
    if (m && m[1] === 'auth') {
      auth = { id: m[2] as string, src };
      continue;
    }
    if (m && /^\d+$/.test(m[1] as string)) {
      const key = (m[3] ?? '').trim();
      // the report never shows a key
      const shown = { ...src, text: `${m[1] as string} ${m[2] as string}${key === '' ? '' : ' <key>'}` };
      methods.set(m[1] as string, { method: (m[2] as string).toLowerCase(), key, src: shown });
      continue;
    }
    ledger.skip(src, 'expected "auth <n>" or "<n> <method> [key]"');
  }
  if (!auth) {
    for (const m of methods.values()) ledger.skip(m.src, 'no "auth <n>" line selects a method');
    return { refused: 'authkeys has no "auth <n>" line' };
  }
  const chosen = methods.get(auth.id);
  for (const [id, m] of methods) {
    if (id !== auth.id) ledger.skip(m.src, `unused: "auth ${auth.id}" selects method ${auth.id}; vigil uses one key (all nodes must share it)`);
  }
  if (!chosen) {
    ledger.skip(auth.src, `no method ${auth.id} is listed`);
    return { refused: `method ${auth.id} is not listed` };
  }
  if (chosen.method === 'crc') {
    ledger.skip(auth.src, 'selects crc (see the next line)');
    ledger.skip(chosen.src, CRC_REFUSED);
    return { refused: 'crc is not authentication' };
  }
  if (chosen.method !== 'sha1' && chosen.method !== 'md5') {
    ledger.skip(auth.src, `selects ${chosen.method}`);
    ledger.skip(chosen.src, `unknown method "${chosen.method}" (Heartbeat knows sha1, md5, crc)`);
    return { refused: `unknown method ${chosen.method}` };
  }
  if (chosen.key === '') {
    ledger.skip(auth.src, `selects ${chosen.method}`);
    ledger.skip(chosen.src, `${chosen.method} needs a key`);
    return { refused: 'no key' };
  }
  ledger.ok(auth.src);
  const why = `the key is written to cluster.key_file (mode 0600); vigil uses it for HMAC-SHA256 instead of ${chosen.method}`;
  if (chosen.key.length < 16) ledger.adjust(chosen.src, `${why}; it is only ${chosen.key.length} characters: consider a longer random key`);
  else ledger.adjust(chosen.src, why);
  return { key: { method: chosen.method, key: chosen.key, src: chosen.src } };
}
