/**
 * One owner of the loaded model at a time. Every request that runs the model's tensors or changes what is
 * attached to it — a training run's steps, the estimate, the chat, an evaluation, an export, switching the
 * adapter, loading a model — takes the lease and gives it back when it is done. A request that cannot
 * have the model now is refused with a sentence saying what holds it and what to do; the estimate, which
 * the page asks for on its own, waits its turn instead and gives way to anyone else who asks.
 *
 * A paused run holds no lease (the chat and the evaluation may use the model meanwhile) but keeps its
 * adapter on the model, so a request that would replace the adapter or the model is refused until the
 * run is resumed to its end or stopped.
 */

export type LeaseKind =
  | 'training'
  | 'estimate'
  | 'chat'
  | 'evaluation'
  | 'export'
  | 'adapter'
  | 'model'
  | 'backend'
  | 'generation'
  | 'drafting';

/** What a holder is doing, and what the person can do about it, as the refusal says it. */
const HOLDING: Readonly<Record<LeaseKind, { doing: string; until: string }>> = {
  training: { doing: 'Training is running', until: 'Pause it or wait for it to finish' },
  estimate: { doing: 'The training estimate is measuring a step', until: 'Wait a moment' },
  chat: { doing: 'The chat is still answering', until: 'Wait for it or press Stop' },
  evaluation: { doing: 'The evaluation is still running', until: 'Wait for it or press Cancel' },
  export: { doing: 'An export is being written', until: 'Wait for it to finish' },
  adapter: { doing: 'An adapter is being put on the model', until: 'Wait a moment' },
  model: { doing: 'A model is loading', until: 'Wait for it to load' },
  backend: { doing: 'The compute backend is starting', until: 'Wait for it' },
  generation: { doing: 'The model is generating text', until: 'Wait for it' },
  drafting: { doing: 'The model is drafting questions', until: 'Wait for it or press Cancel' },
};

export interface Holder {
  kind: LeaseKind;
  /** Overrides HOLDING's sentence (a run says whether it is pausing or stopping). */
  describe?: () => { doing: string; until: string };
  /** Asks the holder to give the lease back soon (the estimate does); others are never interrupted. */
  yieldTo?: () => void;
}

export interface TakeOptions {
  /**
   * The request replaces the adapter or the model (or starts a run on them): refused while a run is paused,
   * whose adapter must stay.
   */
  replacesAdapter?: boolean;
}

/** Gives the lease back; calling it again does nothing. */
export type Release = () => void;

export class LeaseRefused extends Error {
  override name = 'LeaseRefused';
}

interface Held {
  holder: Holder;
  /** Settles when the lease is given back. */
  released: Promise<void>;
}

export class ModelLease {
  private held: Held | null = null;

  /** `runPaused` says whether a training run is paused (its adapter stays on the model). */
  constructor(private readonly runPaused: () => boolean = () => false) {}

  /** What holds the model now, or null. */
  get holder(): LeaseKind | null {
    return this.held?.holder.kind ?? null;
  }

  /**
   * Throws the refusal `take` would give now, or returns; `action` completes "…, then {action}." A request
   * that has long work to do before it needs the model (a download) asks this first.
   */
  check(action: string, options: TakeOptions = {}): void {
    if (options.replacesAdapter && this.runPaused())
      throw new LeaseRefused(`A training run is paused. Resume it to its end or stop it, then ${action}.`);
    const held = this.held;
    if (held && !held.holder.yieldTo) {
      const { doing, until } = held.holder.describe?.() ?? HOLDING[held.holder.kind];
      throw new LeaseRefused(`${doing}. ${until}, then ${action}.`);
    }
  }

  /**
   * The model for `holder`, or a LeaseRefused saying what holds it. A holder that yields (the estimate) is
   * asked to and waited for; whoever asks first after it lets go gets the model.
   */
  async take(holder: Holder, action: string, options: TakeOptions = {}): Promise<Release> {
    for (;;) {
      this.check(action, options);
      if (!this.held) return this.grant(holder);
      this.held.holder.yieldTo?.();
      await this.held.released;
    }
  }

  /**
   * The model for `holder` once nobody holds it: queued behind the holder of the moment rather than
   * refused. `stillWanted` is asked after each wait (a newer request may have replaced this one).
   */
  async wait(
    holder: Holder,
    action: string,
    options: TakeOptions = {},
    stillWanted = () => true,
  ): Promise<Release> {
    for (;;) {
      if (options.replacesAdapter && this.runPaused())
        throw new LeaseRefused(`A training run is paused. Resume it to its end or stop it, then ${action}.`);
      if (!this.held) return this.grant(holder);
      await this.held.released;
      if (!stillWanted())
        throw new LeaseRefused(`The ${holder.kind} was interrupted: a newer request replaced it.`);
    }
  }

  /** Runs `work` holding the lease, and gives it back however `work` ends. */
  async with<T>(
    holder: Holder,
    action: string,
    work: () => Promise<T>,
    options: TakeOptions = {},
  ): Promise<T> {
    const release = await this.take(holder, action, options);
    try {
      return await work();
    } finally {
      release();
    }
  }

  private grant(holder: Holder): Release {
    let settle!: () => void;
    const held: Held = { holder, released: new Promise<void>((resolve) => (settle = resolve)) };
    this.held = held;
    return () => {
      if (this.held !== held) return;
      this.held = null;
      settle();
    };
  }
}
