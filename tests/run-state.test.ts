/**
 * A training run's phases (src/worker/run-state.ts) as a table: every event in every phase either makes
 * the transition the issue describes or is refused with a sentence, and changes nothing when refused.
 */
import { describe, expect, it } from 'vitest';
import { RunState, RunStateError, type RunEvent, type RunPhase } from '../src/worker/run-state';

const PHASES: RunPhase[] = ['idle', 'running', 'pausing', 'paused', 'stopping'];
const EVENTS: RunEvent[] = ['start', 'resume', 'pause', 'stop', 'halted', 'ended'];

/**
 * Written from the behaviour a person expects, not from the module: Pause and Stop only ask (the step in
 * flight finishes), a second Pause or Stop changes nothing, Stop wins over a pause still waiting for its
 * step, a paused run stops at once (stopping, then idle when its trainer is freed), the loop ending on
 * its own always goes back to idle, and nothing starts or resumes while a run is in any other phase.
 */
const EXPECTED: Record<RunPhase, Partial<Record<RunEvent, RunPhase>>> = {
  idle: { start: 'running' },
  running: { pause: 'pausing', stop: 'stopping', ended: 'idle' },
  pausing: { pause: 'pausing', stop: 'stopping', halted: 'paused', ended: 'idle' },
  paused: { resume: 'running', pause: 'paused', stop: 'stopping' },
  stopping: { stop: 'stopping', halted: 'idle', ended: 'idle' },
};

/** The shortest way from idle into `phase`. */
const PATH: Record<RunPhase, RunEvent[]> = {
  idle: [],
  running: ['start'],
  pausing: ['start', 'pause'],
  paused: ['start', 'pause', 'halted'],
  stopping: ['start', 'stop'],
};

function stateIn(phase: RunPhase, changes: RunPhase[] = []): RunState {
  const state = new RunState((p) => changes.push(p));
  for (const event of PATH[phase]) state.apply(event);
  expect(state.phase).toBe(phase);
  changes.length = 0;
  return state;
}

describe('a training run’s phases', () => {
  for (const phase of PHASES) {
    for (const event of EVENTS) {
      const next = EXPECTED[phase][event];
      it(`${phase} + ${event} → ${next ?? 'refused'}`, () => {
        const changes: RunPhase[] = [];
        const state = stateIn(phase, changes);
        expect(state.allows(event)).toBe(next !== undefined);
        if (next === undefined) {
          expect(() => state.apply(event)).toThrow(RunStateError);
          expect(state.phase).toBe(phase);
          expect(changes).toEqual([]);
        } else {
          expect(state.apply(event)).toBe(next);
          expect(state.phase).toBe(next);
          // Listeners hear real changes only, not a second Pause or Stop.
          expect(changes).toEqual(next === phase ? [] : [next]);
        }
      });
    }
  }

  it('refuses what a person can ask for with a sentence saying what to do', () => {
    const asked: RunEvent[] = ['start', 'resume', 'pause', 'stop'];
    for (const phase of PHASES) {
      for (const event of asked) {
        if (EXPECTED[phase][event]) continue;
        const state = stateIn(phase);
        let message = '';
        try {
          state.check(event);
        } catch (error) {
          message = (error as Error).message;
        }
        expect(message, `${phase} + ${event}`).toMatch(/^[A-Z].{20,}\.$/);
        expect(message, `${phase} + ${event}`).not.toMatch(/\b(idle|halted|ended)\b/);
      }
    }
    expect(() => stateIn('paused').check('start')).toThrow(
      'A training run is paused. Resume it, or stop it before starting another.',
    );
    expect(() => stateIn('stopping').check('start')).toThrow(/stopping after its current step/);
    expect(() => stateIn('idle').check('resume')).toThrow('There is no paused training run to resume.');
  });

  it('Stop during a pause in flight, then the step ends: the run is over, not paused', () => {
    const state = stateIn('pausing');
    state.apply('stop');
    expect(state.apply('halted')).toBe('idle');
  });

  it('Pause, Stop, then Start: refused until the step in flight ends, then a new run starts', () => {
    const state = stateIn('running');
    state.apply('pause');
    state.apply('stop');
    expect(() => state.apply('start')).toThrow(RunStateError);
    state.apply('halted');
    expect(state.apply('start')).toBe('running');
  });
});
