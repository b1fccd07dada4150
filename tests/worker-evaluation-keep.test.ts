/**
 * An evaluation's figures are kept with the library adapter it measured — small (no answers), read back
 * after a reopen, and never at the cost of the figures on the page: a full disk becomes a warning and
 * leaves the record as it was. The library's line says which rows were answered: the adapter's held-out
 * rows, all rows of a file (never called held-out), or figures kept before the adapter's own split was
 * used. Adapters saved before evaluations were kept still list.
 */
import 'fake-indexeddb/auto';
import { deleteDB, openDB } from 'idb';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { EvalReport } from '../src/data/evaluate';
import {
  getAdapter,
  listAdapters,
  saveAdapter,
  saveEvaluation,
  type NewAdapter,
} from '../src/store/adapters';
import { closeStore, SCHEMA_VERSION } from '../src/store/db';
import { evaluationLine } from '../src/ui/state/evaluation-summary';
import { keepEvaluation, summarizeEvaluation } from '../src/worker/library';
import type { EvaluationResult } from '../src/worker/protocol';
import { fillDisk } from './helpers/full-disk';

const adapter = (name: string): NewAdapter => ({
  name,
  modelName: 'stories260K',
  datasetId: 'd1',
  datasetName: 'support-tickets.csv',
  settings: { rank: 8 },
  trainLoss: 1.2,
  valLoss: 1.4,
  lossHistory: [{ step: 1, loss: 2 }],
  zip: Uint8Array.of(80, 75, 3, 4),
});

const report = (exact: number, tokens: number, labels: number | null, loss: number): EvalReport => ({
  examples: 4,
  exact_match: exact,
  token_accuracy: tokens,
  loss,
  perplexity: Math.exp(loss),
  classification:
    labels === null
      ? null
      : {
          labels: ['billing', 'shipping'],
          accuracy: labels,
          confusion: { billing: { billing: 2 }, shipping: { billing: 2 } },
        },
  results: [{ prompt: 'Where is my parcel?', expected: 'shipping', output: 'billing', exact: false }],
});

const result = (id: string | null, name: string): EvaluationResult => ({
  split: 'validation',
  examples: 4,
  datasetName: 'support-tickets.csv',
  shots: 3,
  adapter: { id, name },
  base: report(0, 0.31, 0, 4.2),
  fewShot: report(0.25, 0.44, 0.25, 3.1),
  tuned: report(0.75, 0.69, 0.75, 0.9),
  forgetting: { tokens: 80, base_perplexity: 12.5, adapted_perplexity: 13.25 },
  warning: null,
});

describe('evaluations kept with their adapters', () => {
  afterEach(async () => {
    vi.restoreAllMocks();
    await closeStore();
    await deleteDB('webtune');
  });

  it('stores the figures with the adapter evaluated, not the answers, and reads them back after a reopen', async () => {
    vi.spyOn(Date, 'now').mockReturnValue(5000);
    const other = await saveAdapter(adapter('other'));
    const tickets = await saveAdapter(adapter('tickets'));
    expect(await keepEvaluation(result(tickets.id, 'tickets'))).toBeNull();
    await closeStore();

    const listed = await listAdapters();
    expect(listed.find((a) => a.id === other.id)!.evaluation).toBeUndefined();
    const kept = listed.find((a) => a.id === tickets.id)!.evaluation!;
    expect(kept).toEqual({
      evaluatedAt: 5000,
      split: 'validation',
      examples: 4,
      datasetName: 'support-tickets.csv',
      shots: 3,
      base: { exact_match: 0, token_accuracy: 0.31, label_accuracy: 0, loss: 4.2 },
      fewShot: { exact_match: 0.25, token_accuracy: 0.44, label_accuracy: 0.25, loss: 3.1 },
      tuned: { exact_match: 0.75, token_accuracy: 0.69, label_accuracy: 0.75, loss: 0.9 },
      forgetting: { tokens: 80, base_perplexity: 12.5, adapted_perplexity: 13.25 },
    });
    expect(JSON.stringify(kept)).not.toMatch(/parcel|results|confusion/);
    // The zip and the rest of the record are as they were.
    expect(await getAdapter(tickets.id)).toMatchObject({
      name: 'tickets',
      trainLoss: 1.2,
      zip: Uint8Array.of(80, 75, 3, 4),
    });
    expect(evaluationLine(kept)).toBe(
      'Evaluated on the 4 rows this adapter held out when it was trained: label accuracy 75% (base 0%, 3-shot 25%), token accuracy 69%, general-text perplexity 13.3 (base 12.5)',
    );

    // A later evaluation replaces it.
    vi.spyOn(Date, 'now').mockReturnValue(6000);
    expect(
      await keepEvaluation({
        ...result(tickets.id, 'tickets'),
        forgetting: null,
        tuned: report(0.5, 0.6, null, 1.1),
      }),
    ).toBeNull();
    const again = (await listAdapters()).find((a) => a.id === tickets.id)!.evaluation!;
    expect(again.evaluatedAt).toBe(6000);
    expect(evaluationLine(again)).toBe(
      'Evaluated on the 4 rows this adapter held out when it was trained: exact match 50% (base 0%, 3-shot 25%), token accuracy 60%',
    );

    // Every row of a file, asked for: kept as such, never as held-out.
    expect(
      await keepEvaluation({
        ...result(tickets.id, 'tickets'),
        split: 'all',
        examples: 16,
        forgetting: null,
      }),
    ).toBeNull();
    const all = (await listAdapters()).find((a) => a.id === tickets.id)!.evaluation!;
    expect(all).toMatchObject({ split: 'all', examples: 16, datasetName: 'support-tickets.csv' });
    expect(evaluationLine(all)).toBe(
      'Evaluated on all 16 rows of support-tickets.csv (not held out: the adapter may have been trained on them): label accuracy 75% (base 0%, 3-shot 25%), token accuracy 69%',
    );
  });

  it("does not call figures kept before evaluations used the adapter's own split held-out", async () => {
    const tickets = await saveAdapter(adapter('tickets'));
    // As an earlier version kept them: no file name, and its 'validation' was the open dataset's split then.
    const { datasetName: _datasetName, ...older } = summarizeEvaluation(result(tickets.id, 'tickets'), 5000);
    await saveEvaluation(tickets.id, older);
    const kept = (await listAdapters())[0].evaluation!;
    expect(kept.datasetName).toBeUndefined();
    expect(evaluationLine(kept)).toMatch(
      /^Evaluated on 4 rows of an older evaluation, which may include rows the adapter was trained on \(evaluate again to be sure\): label accuracy 75%/,
    );
    await saveEvaluation(tickets.id, { ...older, split: 'all' });
    expect(evaluationLine((await listAdapters())[0].evaluation!)).toMatch(
      /^Evaluated on 4 rows \(every row: the dataset had no held-out split\): /,
    );
  });

  it('turns a full disk into a warning and leaves the record as it was', async () => {
    const tickets = await saveAdapter(adapter('tickets'));
    await keepEvaluation(result(tickets.id, 'tickets'));
    const before = await listAdapters();
    const emptyDisk = fillDisk('adapters');
    let warning: string | null;
    try {
      warning = await keepEvaluation({ ...result(tickets.id, 'tickets'), tuned: report(1, 1, 1, 0.1) });
    } finally {
      emptyDisk();
    }
    expect(warning).toMatch(
      /^These figures are shown here but not kept with "tickets" in the library\. Your browser's storage for this site is full: .*Delete old adapters or datasets, then try again\./,
    );
    await closeStore();
    expect(await listAdapters()).toEqual(before);
  });

  it('says the figures are not kept for an adapter that is not in the library', async () => {
    expect(await keepEvaluation(result(null, 'the stopped run (not saved)'))).toMatch(
      /not kept: the stopped run \(not saved\) is not in the adapter library/,
    );
    expect(await listAdapters()).toEqual([]);
  });

  it('lists adapters saved before evaluations were kept, and drops a malformed evaluation instead of breaking the library', async () => {
    const db = await openDB('webtune', SCHEMA_VERSION, {
      upgrade: (d) => {
        d.createObjectStore('adapters', { keyPath: 'id' }).createIndex('by-created', 'createdAt');
        d.createObjectStore('adapterZips', { keyPath: 'id' });
        for (const name of ['datasets', 'datasetFiles']) d.createObjectStore(name, { keyPath: 'id' });
        d.createObjectStore('checkpoints', { keyPath: 'runId' }).createIndex('by-created', 'createdAt');
      },
    });
    const { zip, ...fields } = adapter('old');
    await db.put('adapters', { ...fields, id: 'old', createdAt: 100, byteLength: zip.byteLength });
    await db.put('adapters', {
      ...fields,
      name: 'odd',
      id: 'odd',
      createdAt: 200,
      byteLength: zip.byteLength,
      evaluation: { split: 'validation', examples: '4' },
    });
    db.close();

    const listed = await listAdapters();
    expect(listed.map((a) => [a.name, a.evaluation])).toEqual([
      ['odd', undefined],
      ['old', undefined],
    ]);
    expect(await keepEvaluation(result('old', 'old'))).toBeNull();
    expect((await listAdapters()).find((a) => a.id === 'old')!.evaluation!.tuned.label_accuracy).toBe(0.75);
  });

  it('summarizes without the answers per example', () => {
    const summary = summarizeEvaluation(result('a', 'a'), 1);
    expect(Object.keys(summary.tuned).sort()).toEqual([
      'exact_match',
      'label_accuracy',
      'loss',
      'token_accuracy',
    ]);
  });
});
