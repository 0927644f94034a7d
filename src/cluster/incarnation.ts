/**
 * The incarnation a node puts in every heartbeat, kept across restarts in
 * `cluster.state_file` (what Heartbeat keeps in hb_generation).
 *
 * Peers refuse a frame from an incarnation older than the newest they have seen from
 * that node (replay protection, wire.ts). The incarnation is the start time in µs, so
 * after a restart with the wall clock stepped back (a bad RTC, NTP fixing a clock that
 * ran ahead) the node's frames would be refused until its clock passed the old start
 * time: its peers would count it dead, and with preempt both could end up active. With
 * the state file the new incarnation is above every one used before, whatever the clock.
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { VigilError } from '../errors.js';
import type { Logger } from '../log.js';

/** Pure: the incarnation for this start, given the stored one (if any) and the clock in µs. */
export function nextIncarnation(stored: bigint | undefined, nowUs: bigint): bigint {
  return stored !== undefined && stored >= nowUs ? stored + 1n : nowUs;
}

/** The stored incarnation; undefined when there is none yet (or it is unreadable: logged). */
export function readIncarnation(file: string, logger: Logger): bigint | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8').trim();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    throw new VigilError('VIGIL_STATE_FILE', `cluster.state_file ${file}: cannot read (${code ?? String(err)})`, 500, { cause: err });
  }
  if (!/^\d{1,20}$/.test(text)) {
    logger.warn({ file, content: text.slice(0, 40) }, 'cluster.state_file does not hold an incarnation; starting a new one from the clock');
    return undefined;
  }
  return BigInt(text);
}

/** Writes the incarnation durably (temp file, fsync, rename) before any frame carries it. */
export function writeIncarnation(file: string, value: bigint): void {
  const tmp = join(dirname(file), `.${process.pid}.incarnation.tmp`);
  try {
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, `${value}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new VigilError(
      'VIGIL_STATE_FILE',
      `cluster.state_file ${file}: cannot write (${code ?? String(err)}); its directory must exist and be writable by vigil (the systemd unit's StateDirectory is /var/lib/vigil)`,
      500,
      { cause: err },
    );
  }
}

/** This start's incarnation, stored before it is used. */
export function startIncarnation(file: string, nowUs: bigint, logger: Logger): bigint {
  const stored = readIncarnation(file, logger);
  const next = nextIncarnation(stored, nowUs);
  writeIncarnation(file, next);
  if (stored !== undefined && stored >= nowUs) {
    logger.warn({ file, stored: String(stored), clockUs: String(nowUs) }, 'the wall clock is behind the last incarnation this node used; continuing from the stored one');
  }
  return next;
}
