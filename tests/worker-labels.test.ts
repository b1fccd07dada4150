/**
 * The data step on a label dataset: support-tickets.csv's department column is 4 labels, 4 tickets each
 * (counted here from the file, not by webtune). The worker says so, says which labels the validation
 * split leaves out, and suggests a split that keeps them all — which, applied, does.
 */
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { splitTrainValidation } from '../src/data';
import { DatasetSession } from '../src/worker/dataset-session';
import type { DatasetSettings } from '../src/worker/protocol';
import { dataFile } from './helpers/shared';

const FILE = 'support-tickets.csv';
const departments = fs
  .readFileSync(dataFile(FILE), 'utf8')
  .trim()
  .split(/\r?\n/)
  .slice(1)
  .map((line) => line.split(',').at(-1)!.trim());
const SETTINGS: DatasetSettings = {
  mapping: { kind: 'template', promptTemplate: '{ticket}', completionTemplate: '{department}' },
  useChatTemplate: false,
  maxLength: 64,
  valSplit: 0.1,
  seed: 0,
};

describe('labels in the data step', () => {
  it('are counted, and a split that keeps every label is suggested and works', () => {
    const counts = new Map<string, number>();
    for (const d of departments) counts.set(d, (counts.get(d) ?? 0) + 1);
    const session = new DatasetSession();
    const first = session.open({
      bytes: new Uint8Array(fs.readFileSync(dataFile(FILE))),
      fileName: FILE,
      settings: SETTINGS,
    });
    expect(new Map(first.labels!.counts)).toEqual(counts);
    expect(first.labels!.balanced).toBe(true);
    // 0.1 of 16 holds out 2 tickets: at most 2 of the 4 departments.
    const held = new Set(splitTrainValidation(departments, 0.1, 0).validation);
    expect(first.labels!.missingFromValidation).toEqual(
      [...counts.keys()].filter((d) => !held.has(d)).sort(),
    );
    expect(first.labels!.missingFromValidation.length).toBeGreaterThanOrEqual(2);
    const suggested = first.labels!.suggestedSplit!;
    expect(suggested).toBeGreaterThan(0.1);

    const applied = session.configure({ ...SETTINGS, valSplit: suggested });
    expect(applied.labels!.missingFromValidation).toEqual([]);
    expect(applied.labels!.suggestedSplit).toBeNull();
    // Independently: the held-out and training tickets of that split each cover every department.
    const { train, validation } = splitTrainValidation(departments, suggested, 0);
    expect(new Set(validation).size).toBe(counts.size);
    expect(new Set(train).size).toBe(counts.size);
  });

  it('are not claimed for free text', () => {
    const session = new DatasetSession();
    const prepared = session.open({
      bytes: new Uint8Array(fs.readFileSync(dataFile('best-friends.csv'))),
      fileName: 'best-friends.csv',
      settings: { ...SETTINGS, mapping: null },
    });
    expect(prepared.labels).toBeNull();
  });
});
