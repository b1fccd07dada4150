/** Exact match, label detection and confusion counts on fixed outputs, worked out by hand. */
import { describe, expect, it } from 'vitest';
import {
  classify,
  cleanOutput,
  detectLabels,
  isExactMatch,
  labelSummary,
  predictedLabel,
} from '../src/data/metrics';

describe('exact match', () => {
  it('cuts at the first stop string and trims both sides', () => {
    expect(cleanOutput('  billing\nQ: next question', ['\n'])).toBe('billing');
    expect(cleanOutput('a<|im_end|>b###c', ['###', '<|im_end|>'])).toBe('a');
    expect(isExactMatch(' Paris.\n', 'Paris.')).toBe(true);
    expect(isExactMatch('Paris', 'Paris.')).toBe(false);
    expect(isExactMatch('paris.', 'Paris.')).toBe(false); // case counts
  });
});

describe('labels', () => {
  it('are a few values each used at least twice; free text is not', () => {
    expect(detectLabels(['billing', 'shipping ', 'billing', ' shipping', 'tech', 'tech'])).toEqual([
      'billing',
      'shipping',
      'tech',
    ]);
    expect(detectLabels(['billing', 'billing', 'tech'])).toBeNull(); // tech used once
    expect(detectLabels(Array.from({ length: 42 }, (_, i) => `label ${i % 21}`))).toBeNull(); // 21 labels
    expect(detectLabels(Array.from({ length: 40 }, (_, i) => `label ${i % 20}`))).toHaveLength(20);
    expect(detectLabels([])).toBeNull();
  });

  it('predict the longest label an output starts with, else other', () => {
    const labels = ['bill', 'billing', 'tech'];
    expect(predictedLabel(' billing, because the card was charged twice', labels)).toBe('billing');
    expect(predictedLabel('bill me later', labels)).toBe('bill');
    expect(predictedLabel('I think tech', labels)).toBe('other');
  });

  it('count accuracy and a confusion matrix by expected, then predicted', () => {
    const result = classify(
      [
        { output: 'billing', expected: 'billing' },
        { output: 'billing.', expected: 'billing' },
        { output: 'tech', expected: 'billing' },
        { output: 'tech support', expected: 'tech' },
        { output: 'no idea', expected: 'tech' },
      ],
      ['billing', 'tech'],
    );
    expect(result.accuracy).toBeCloseTo(3 / 5, 12);
    expect(result.confusion).toEqual({ billing: { billing: 2, tech: 1 }, tech: { tech: 1, other: 1 } });
  });
});

describe('label summary', () => {
  // 12 examples: a (6), b (4), c (2); the "split" holds out the last round(12·f) of them.
  const completions = ['a', 'a', 'b', 'a', 'b', 'a', 'c', 'a', 'b', 'a', 'b', 'c'];
  const split = (f: number) => {
    const held = Math.round(completions.length * f);
    return {
      validation: completions.slice(completions.length - held),
      train: completions.slice(0, completions.length - held),
    };
  };

  it('counts the labels, says whether they are balanced, and finds the smallest split that keeps every one', () => {
    // 0.1 holds out 1 example ("c"): a and b are missing. 0.25 holds out 3 (a, b, c), and training keeps all
    // three.
    expect(labelSummary(completions, 0.1, split)).toEqual({
      counts: [
        ['a', 6],
        ['b', 4],
        ['c', 2],
      ],
      balanced: false,
      missingFromValidation: ['a', 'b'],
      suggestedSplit: 0.25,
    });
    expect(labelSummary(completions, 0.25, split)).toMatchObject({
      missingFromValidation: [],
      suggestedSplit: null,
    });
    // No validation split: every label is missing from it.
    expect(labelSummary(completions, 0, split)!.missingFromValidation).toEqual(['a', 'b', 'c']);
    expect(
      labelSummary(['a', 'a', 'b', 'b'], 0.5, (f) => ({
        validation: ['a', 'b'].slice(0, Math.round(4 * f)),
        train: ['a', 'b'],
      }))!.balanced,
    ).toBe(true);
  });

  it('is null for free text', () => {
    expect(labelSummary(['one answer', 'another answer', 'a third'], 0.1, split)).toBeNull();
  });
});
