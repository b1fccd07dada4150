// The presets' rules (src/data/presets.ts): small and large datasets, small and large models.
import { describe, expect, it } from 'vitest';
import { matchesPreset, presetSettings, PRESET_NAMES } from '../src/data/presets';

const tinyModel = 260e3; // stories260K
const smolModel = 135e6; // SmolLM2-135M
const bigModel = 1.5e9;

describe('presets', () => {
  it('give a tiny dataset many more epochs than a large one, for every preset', () => {
    const small = { trainExamples: 32, tokens: 2_000, parameters: tinyModel };
    const large = { trainExamples: 5_000, tokens: 400_000, parameters: tinyModel };
    expect(PRESET_NAMES.map((p) => presetSettings(p, small).epochs)).toEqual([3, 10, 20]);
    expect(PRESET_NAMES.map((p) => presetSettings(p, large).epochs)).toEqual([1, 2, 4]);
    // Between: a few hundred examples.
    expect(presetSettings('balanced', { ...small, trainExamples: 150 }).epochs).toBe(6);
    expect(presetSettings('balanced', { ...small, trainExamples: 600 }).epochs).toBe(3);
  });

  it('make one pass for a quick try of a very large dataset, and at most three for Thorough', () => {
    const huge = { trainExamples: 20_000, tokens: 3_000_000, parameters: smolModel };
    expect(presetSettings('quick', huge).epochs).toBe(1);
    expect(presetSettings('thorough', huge).epochs).toBe(3);
  });

  it('lower the learning rate for larger models', () => {
    const data = { trainExamples: 100, tokens: 10_000 };
    const rates = [tinyModel, smolModel, 500e6, bigModel].map(
      (parameters) => presetSettings('balanced', { ...data, parameters }).learningRate,
    );
    expect(rates).toEqual([5e-3, 1e-3, 5e-4, 2e-4]);
    // Quick try steps harder, Thorough calmer, at every size.
    for (const parameters of [tinyModel, bigModel]) {
      const [quick, balanced, thorough] = PRESET_NAMES.map(
        (p) => presetSettings(p, { ...data, parameters }).learningRate,
      );
      expect(quick).toBeGreaterThan(balanced);
      expect(thorough).toBeLessThan(balanced);
    }
    expect(presetSettings('thorough', { ...data, parameters: bigModel }).learningRate).toBe(0.00013);
  });

  it("give DPO and ORPO a tenth of SFT's learning rate, and change nothing else", () => {
    const data = { trainExamples: 100, tokens: 10_000 };
    for (const objective of ['dpo', 'orpo'] as const) {
      const rates = [tinyModel, smolModel, 500e6, bigModel].map(
        (parameters) => presetSettings('balanced', { ...data, parameters, objective }).learningRate,
      );
      expect(rates).toEqual([5e-4, 1e-4, 5e-5, 2e-5]);
      const sft = presetSettings('quick', { ...data, parameters: smolModel });
      const preference = presetSettings('quick', { ...data, parameters: smolModel, objective });
      expect({ ...preference, learningRate: 0 }).toEqual({ ...sft, learningRate: 0 });
    }
  });

  it('grow the adapter from Quick try to Thorough, alpha twice the rank', () => {
    const input = { trainExamples: 100, tokens: 10_000, parameters: smolModel };
    const quick = presetSettings('quick', input);
    const balanced = presetSettings('balanced', input);
    const thorough = presetSettings('thorough', input);
    expect([quick.rank, quick.alpha, quick.targets]).toEqual([8, 16, ['q_proj', 'v_proj']]);
    expect([balanced.rank, balanced.alpha, balanced.targets]).toEqual([
      8,
      16,
      ['q_proj', 'k_proj', 'v_proj', 'o_proj'],
    ]);
    expect([thorough.rank, thorough.alpha, thorough.targets]).toEqual([
      16,
      32,
      ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
    ]);
  });

  it('plan for a small dataset and a toy model before either is known', () => {
    expect(presetSettings('balanced', { trainExamples: null, tokens: null, parameters: null })).toEqual(
      presetSettings('balanced', { trainExamples: 100, tokens: 0, parameters: 1e6 }),
    );
  });

  it('say "Custom" once a knob differs, whatever the order of the targets', () => {
    const preset = presetSettings('balanced', { trainExamples: 40, tokens: 1_000, parameters: tinyModel });
    expect(matchesPreset({ ...preset, targets: [...preset.targets].reverse() }, preset)).toBe(true);
    expect(matchesPreset({ ...preset, epochs: preset.epochs + 1 }, preset)).toBe(false);
    expect(matchesPreset({ ...preset, learningRate: 0.01 }, preset)).toBe(false);
    expect(matchesPreset({ ...preset, alpha: 8 }, preset)).toBe(false);
    expect(matchesPreset({ ...preset, targets: ['q_proj', 'k_proj', 'v_proj'] }, preset)).toBe(false);
  });
});
