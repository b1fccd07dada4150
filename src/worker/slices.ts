/**
 * Long preparations in the worker (tokenising a dataset's rows or cutting its documents) run in slices: every
 * SLICE_MS they report progress and let queued messages in, so a cancel or newer settings can stop them.
 */
import { DatasetError } from '../data';
import type { DatasetProgress } from './protocol';

/** How long preparation works before it reports progress and lets a cancel (or new settings) in. */
const SLICE_MS = 50;

/** Lets queued messages (a cancel, new settings) run before the next slice of work. */
const nextTask = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

type Stop = 'cancelled' | 'changed' | null;

/** At most one preparation at a time; starting another stops the one under way. */
export class Slices {
  private job: { stopped: Stop } | null = null;

  /** Stops the preparation in progress at its next slice; false when there is none. */
  cancel(): boolean {
    if (!this.job) return false;
    this.job.stopped = 'cancelled';
    return true;
  }

  /** What the preparation works on changed: it stops at its next slice, saying so. */
  changed(): void {
    if (this.job) this.job.stopped = 'changed';
  }

  /**
   * Runs a preparation whose `pause`, called after each row (or document), reports progress every SLICE_MS,
   * lets queued messages in, and stops it when cancel() or a change asks.
   */
  async run(
    work: (pause: (progress: DatasetProgress) => Promise<void>) => Promise<void>,
    items: 'rows' | 'documents',
    onProgress?: (progress: DatasetProgress) => void,
  ): Promise<void> {
    this.changed();
    const job: { stopped: Stop } = { stopped: null };
    this.job = job;
    let sliceStart = performance.now();
    try {
      await work(async ({ done, total }) => {
        if (performance.now() - sliceStart < SLICE_MS) return;
        onProgress?.({ done, total });
        await nextTask();
        // The page drops answers to requests older than its newest, so this one is seldom read.
        if (job.stopped === 'changed')
          throw new Error(
            'The dataset, its settings or the model changed while the examples were prepared; they are prepared again for the new ones.',
          );
        if (job.stopped === 'cancelled') {
          throw new DatasetError(
            `Preparing the examples was cancelled after ${done.toLocaleString('en-US')} of ${total.toLocaleString('en-US')} ${items}. ` +
              `Open the file again or change the max length to prepare it again; fewer or shorter ${items} prepare faster.`,
          );
        }
        sliceStart = performance.now();
      });
    } finally {
      if (this.job === job) this.job = null;
    }
  }
}
