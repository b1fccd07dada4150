/**
 * The phases of a training run and the only ways between them. A run's steps take seconds to minutes on a
 * CPU, and Pause and Stop arrive while one is in flight: they ask, and the loop answers at its next check
 * (`halted`) or by running out of steps (`ended`). Nothing else changes the phase.
 *
 *   idle ─start→ running ─pause→ pausing ─halted→ paused ─resume→ running
 *                running ─stop→ stopping ─halted→ idle     paused ─stop→ stopping
 *                pausing ─stop→ stopping                    running/pausing/stopping ─ended→ idle
 */
export type RunPhase = 'idle' | 'running' | 'pausing' | 'paused' | 'stopping';

/**
 * What can happen to a run: the person's start, resume, pause and stop; the loop's `halted` (it stopped
 * at a check because a pause or stop was asked for) and `ended` (it ran out of steps, stopped early, or
 * failed).
 */
export type RunEvent = 'start' | 'resume' | 'pause' | 'stop' | 'halted' | 'ended';

/** Every allowed transition; an event missing from a phase's row is refused. */
export const RUN_TRANSITIONS: Readonly<Record<RunPhase, Readonly<Partial<Record<RunEvent, RunPhase>>>>> = {
  idle: { start: 'running' },
  running: { pause: 'pausing', stop: 'stopping', ended: 'idle' },
  pausing: { pause: 'pausing', stop: 'stopping', halted: 'paused', ended: 'idle' },
  paused: { resume: 'running', pause: 'paused', stop: 'stopping' },
  stopping: { stop: 'stopping', halted: 'idle', ended: 'idle' },
};

/** Why a person's request does not apply in a phase, in words they can act on. */
const REFUSALS: Readonly<Record<RunPhase, Readonly<Partial<Record<RunEvent, string>>>>> = {
  idle: {
    resume: 'There is no paused training run to resume.',
    pause: 'There is no training run to pause.',
    stop: 'There is no training run to stop.',
  },
  running: {
    start: 'A training run is already running. Pause or stop it first.',
    resume: 'The training run is already running.',
  },
  pausing: {
    start: 'A training run is pausing after its current step. Stop it first.',
    resume: 'The training run is pausing after its current step; resume it once it has paused.',
  },
  paused: {
    start: 'A training run is paused. Resume it, or stop it before starting another.',
  },
  stopping: {
    start: 'The last training run is stopping after its current step. Start again in a moment.',
    resume: 'The training run is stopping; it can no longer be resumed.',
    pause: 'The training run is already stopping after its current step.',
  },
};

export class RunStateError extends Error {
  override name = 'RunStateError';
}

export class RunState {
  private current: RunPhase = 'idle';

  /** Hears every change of phase (not a self-transition such as a second Pause). */
  constructor(private readonly onChange: (phase: RunPhase) => void = () => {}) {}

  get phase(): RunPhase {
    return this.current;
  }

  /** Whether `event` applies now. */
  allows(event: RunEvent): boolean {
    return RUN_TRANSITIONS[this.current][event] !== undefined;
  }

  /** Throws, saying why, unless `event` applies now; changes nothing. */
  check(event: RunEvent): void {
    if (this.allows(event)) return;
    throw new RunStateError(
      REFUSALS[this.current][event] ?? `A training run cannot go from ${this.current} on ${event}.`,
    );
  }

  /** The transition `event` makes from the current phase; throws (changing nothing) when there is none. */
  apply(event: RunEvent): RunPhase {
    this.check(event);
    const next = RUN_TRANSITIONS[this.current][event]!;
    const changed = next !== this.current;
    this.current = next;
    if (changed) this.onChange(next);
    return next;
  }
}
