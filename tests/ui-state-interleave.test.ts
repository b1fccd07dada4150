/**
 * The page's side of one owner of the model, with the real engine behind a worker (tests/helpers/
 * page-engine.ts): a person's actions on the run, the chat, the evaluation and the adapter in pairs, the
 * second clicked at the start, the middle and the end of the first, from an idle page and a paused run.
 * Whatever the order, both end, the page shows the run in the phase the worker has it, nothing stays
 * "answering" or "running", every message shown is a sentence, and a paused run resumes from the page.
 */
import 'fake-indexeddb/auto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { pageWithEngine, type EnginePage } from './helpers/page-engine';
import { switchBackend } from './helpers/shared';

const ROWS = Array.from({ length: 16 }, (_, i) => `What is ${i} plus one?,It is ${i + 1}.`);
const CSV = `question,answer\n${ROWS.join('\n')}\n`;

type Action = 'start' | 'pause' | 'stop' | 'resume' | 'chat' | 'evaluate' | 'adapterOff';

const ACTIONS: Record<Action, (p: EnginePage) => Promise<unknown>> = {
  start: (p) => p.training.start(),
  pause: (p) => p.training.pause(),
  stop: (p) => p.training.stop(),
  resume: (p) => p.training.resume(),
  chat: (p) => {
    p.chat.message = 'What is 3 plus one?';
    return p.chat.send();
  },
  evaluate: (p) => p.evaluation.run(),
  adapterOff: (p) => p.adapters.use(null),
};
const ALL = Object.keys(ACTIONS) as Action[];

const turn = () => new Promise((resolve) => setTimeout(resolve, 0));

/** What the page shows a person: every message must be a sentence, never a program's error. */
function shownMessages(p: EnginePage): string[] {
  const panes = Object.values(p.chat.panes).map((pane) => pane.error);
  return [p.training.error, p.training.warning, p.evaluation.error, p.adapters.error, ...panes].filter(
    (m): m is string => m !== null,
  );
}

/** Waits until the page has nothing in flight (a few turns past the last answer). */
async function quiet(p: EnginePage): Promise<void> {
  for (let i = 0; i < 2000; i++) {
    const busy = p.training.running || p.chat.answering || p.evaluation.running || p.adapters.busy;
    if (!busy && p.host().lease.holder === null) {
      for (let j = 0; j < 5; j++) await turn();
      return;
    }
    await turn();
  }
  throw new Error('The page did not come to rest.');
}

/** Clears what the last interleaving showed and brings the run to `base`. */
async function toBase(p: EnginePage, base: 'idle' | 'paused'): Promise<void> {
  if (p.training.paused) await p.training.stop();
  if (p.training.phase !== 'idle') throw new Error(`The run is ${p.training.phase}, not idle.`);
  if (!p.host().slot.adapter) await p.training.start(); // an adapter for the chat and the evaluation
  p.training.error = p.training.warning = p.evaluation.error = p.adapters.error = null;
  p.chat.clear();
  if (base === 'paused') {
    const run = p.training.start();
    await vi.waitUntil(() => p.training.steps.length > 0, { timeout: 30_000, interval: 1 });
    await p.training.pause();
    await run;
    expect(p.training.phase).toBe('paused');
  }
}

describe('every pair of actions on the page, with the real engine', () => {
  let p: EnginePage;
  beforeAll(async () => {
    await switchBackend('wasm');
    p = await pageWithEngine();
    await p.dataset.open(new File([CSV], 'sums.csv', { type: 'text/csv' }));
    Object.assign(p.training.settings, {
      epochs: 1,
      batchSize: 4,
      rank: 2,
      alpha: 4,
      dropout: 0,
      targets: ['q_proj', 'v_proj'],
      recompute: 'off',
      warmupSteps: 0,
    });
    p.training.markCustom();
    p.chat.settings.maxNewTokens = 4;
  }, 120_000);
  afterAll(() => {
    p?.host().dispose();
    vi.unstubAllGlobals();
  });

  async function interleave(base: 'idle' | 'paused', first: Action, second: Action, turns: number) {
    const label = `${base}: ${first}, then ${second} after ${turns} turns`;
    await toBase(p, base);
    const a = ACTIONS[first](p);
    for (let i = 0; i < turns; i++) await turn();
    const b = ACTIONS[second](p);
    await Promise.all([a, b]);
    await quiet(p);
    const host = p.host();
    expect(p.training.phase, label).toBe(host.training.phase);
    expect(['idle', 'paused'], label).toContain(p.training.phase);
    for (const message of shownMessages(p)) {
      expect(message, label).toMatch(/^[A-Z"“].*[.)”]$/s);
      expect(message, label).not.toMatch(/undefined|Cannot read|TypeError|is not a function/);
    }
    if (p.training.paused) {
      // Resumable from the page, to its end.
      await p.training.resume();
      expect(p.training.phase, label).toBe('idle');
      expect(p.training.error, label).toBeNull();
    }
  }

  const firsts: Record<'idle' | 'paused', Action[]> = {
    idle: ['start'],
    paused: ['resume', 'stop', 'chat'],
  };
  for (const base of ['idle', 'paused'] as const) {
    for (const first of firsts[base]) {
      it(
        `${base}: ${first}, then any other action at its start, middle and end`,
        { timeout: 600_000 },
        async () => {
          // How many turns the first action takes on its own.
          await toBase(p, base);
          let done = false;
          void ACTIONS[first](p).then(() => (done = true));
          let last = 0;
          while (!done) {
            await turn();
            last++;
          }
          await quiet(p);
          for (const second of ALL)
            for (let turns = 0; turns <= last; turns++) await interleave(base, first, second, turns);
        },
      );
    }
  }
});
