/**
 * Rise/fall: a real server's health verdict as plain data, stepped by each probe result.
 *
 *            ok × rise (consecutive)
 *   DOWN ───────────────────────────► UP
 *        ◄───────────────────────────
 *            failed × fall (consecutive)
 *
 * A failed run resets consecutiveOk and an ok run resets consecutiveFail, so a flapping
 * server that never strings `rise` successes together stays down. `changed` is true only
 * on a transition: events are emitted on change, never on every run.
 */

export type HealthState = 'up' | 'down';

export interface Verdict {
  state: HealthState;
  consecutiveOk: number;
  consecutiveFail: number;
}

export interface Thresholds {
  rise: number;
  fall: number;
}

export function initialVerdict(initial: HealthState): Verdict {
  return { state: initial, consecutiveOk: 0, consecutiveFail: 0 };
}

export function stepVerdict(v: Verdict, ok: boolean, t: Thresholds): { verdict: Verdict; changed: boolean } {
  if (ok) {
    const consecutiveOk = v.consecutiveOk + 1;
    const state: HealthState = v.state === 'down' && consecutiveOk >= t.rise ? 'up' : v.state;
    return { verdict: { state, consecutiveOk, consecutiveFail: 0 }, changed: state !== v.state };
  }
  const consecutiveFail = v.consecutiveFail + 1;
  const state: HealthState = v.state === 'up' && consecutiveFail >= t.fall ? 'down' : v.state;
  return { verdict: { state, consecutiveOk: 0, consecutiveFail }, changed: state !== v.state };
}
