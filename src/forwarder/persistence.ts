/**
 * Persistence templates (ipvsadm -p timeout -M netmask): a client's masked address maps
 * to the real server its first connection went to. Like an IPVS template connection,
 * an entry lives while connections it controls are open and for `timeout` after the last
 * connection it scheduled or saw end. A template whose real server is gone or has weight
 * 0 is dropped and the client is scheduled afresh — IPVS's behaviour with
 * `expire_quiescent_template` set, which vigil's deploy/ sets for IPVS too, so a drain
 * drains persistent clients as well. Pure; time comes in as `now` (monotonic ms).
 */

export interface Template<D> {
  dest: D;
  /** Connections (or UDP flows) scheduled through this template and still open. */
  refs: number;
  expiresAt: number;
}

export class PersistenceTable<D> {
  private readonly entries = new Map<string, Template<D>>();
  constructor(public timeoutMs: number) {}

  get size(): number {
    return this.entries.size;
  }

  /** The live template for a client key, or undefined (an expired one is removed). */
  lookup(key: string, now: number): Template<D> | undefined {
    const t = this.entries.get(key);
    if (t === undefined) return undefined;
    if (t.refs === 0 && t.expiresAt <= now) {
      this.entries.delete(key);
      return undefined;
    }
    return t;
  }

  /** A new connection for this client goes to dest: creates or refreshes the template. */
  bind(key: string, dest: D, now: number): Template<D> {
    let t = this.entries.get(key);
    if (t === undefined || t.dest !== dest) {
      t = { dest, refs: 0, expiresAt: 0 };
      this.entries.set(key, t);
    }
    t.refs += 1;
    t.expiresAt = now + this.timeoutMs;
    return t;
  }

  /** Installs a template learnt elsewhere (another worker) unless one is already live. */
  adopt(key: string, dest: D, now: number): void {
    if (this.lookup(key, now) === undefined) this.entries.set(key, { dest, refs: 0, expiresAt: now + this.timeoutMs });
  }

  /** A connection scheduled through t ended. */
  release(t: Template<D>, now: number): void {
    if (t.refs > 0) t.refs -= 1;
    if (t.expiresAt < now + this.timeoutMs) t.expiresAt = now + this.timeoutMs;
  }

  /** Forgets a client's template (its real server failed or was drained). */
  drop(key: string): void {
    this.entries.delete(key);
  }

  /** Removes expired templates; returns how many. */
  sweep(now: number): number {
    let n = 0;
    for (const [k, t] of this.entries) {
      if (t.refs === 0 && t.expiresAt <= now) {
        this.entries.delete(k);
        n += 1;
      }
    }
    return n;
  }
}
