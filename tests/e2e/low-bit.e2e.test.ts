// A base in 4 bits, as a person chooses it on the built site: Train · Advanced · Base weights → 4-bit loads
// the model again with nf4 weights (the model panel says so), a run trains on it to the end, and the chat
// compares the base with the fine-tuned model, the fine-tuned one repeating what it learned; Evaluate says
// what the 4-bit weights cost on a text against the 32-bit ones.
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { jsonResult, runCli } from '../helpers/cli';
import { dataFile, modelDir } from '../helpers/shared';
import { useHarness } from './browser';

const rows = fs
  .readFileSync(dataFile('animal-sounds.jsonl'), 'utf8')
  .trim()
  .split('\n')
  .map((line) => JSON.parse(line) as { prompt: string; completion: string });

describe('a base held in 4 bits', () => {
  const harness = useHarness({ fresh: true });

  it('is chosen under Advanced, trains, and the chat compares it with the fine-tuned model', async () => {
    const { page } = harness;
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    await page.goto(`${harness.baseUrl}/?model=/models/stories260K`);
    await page.getByText('260K parameters').waitFor({ timeout: 60_000 });
    // Automatic: a model this small fits in 32 bits, and the panel says why.
    const weights = page.locator('.weights');
    await expect.poll(() => weights.getAttribute('data-weights')).toBe('f32');
    expect(await weights.textContent()).toMatch(
      /Base weights: 32-bit: training on 1 × 256 tokens needs about/,
    );

    await page.getByLabel('Dataset file').setInputFiles(dataFile('animal-sounds.jsonl'));
    await page.getByText('What the model will see').waitFor();
    await page.getByText('Advanced').click();
    await page.getByLabel('Base weights').selectOption('nf4');
    await expect.poll(() => weights.getAttribute('data-weights'), { timeout: 60_000 }).toBe('nf4');
    expect(await weights.textContent()).toContain('Base weights: 4-bit (nf4), as chosen');
    await harness.shot('low-bit-1-chosen');

    const quick = await page
      .getByRole('group', { name: 'Quick prompts' })
      .getByRole('button')
      .allTextContents();
    const row = rows.find((r) => !quick.includes(r.prompt))!;
    await page.getByLabel('Epochs').fill('30');
    await page.getByLabel('Learning rate').fill('0.01');
    await page.getByLabel('Dropout').fill('0');
    await page.getByLabel('Adapter to keep').selectOption('last');
    for (const target of ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'])
      await page.getByLabel(target, { exact: true }).check();
    await page.getByRole('button', { name: 'Start training' }).click();
    await page.getByRole('status').filter({ hasText: 'Training complete' }).waitFor({ timeout: 240_000 });

    const pane = (name: string) => page.getByRole('region', { name, exact: true });
    await page.getByLabel('Message').fill(row.prompt);
    await expect
      .poll(() => page.locator('.composer').getByRole('button', { name: 'Send', exact: true }).isEnabled(), {
        timeout: 60_000,
      })
      .toBe(true);
    await page.getByLabel('Message').press('Enter');
    for (const name of ['Base model', 'Fine-tuned model'])
      await pane(name).locator('li.assistant:not(.streaming)').first().waitFor({ timeout: 60_000 });
    const answer = async (name: string) =>
      (await pane(name).locator('li.assistant:not(.streaming) .text').last().textContent()) ?? '';
    expect(await answer('Fine-tuned model')).toContain(row.completion);
    expect(await answer('Base model')).not.toContain(row.completion);
    // The panel still says how the weights are held after the run.
    expect(await weights.getAttribute('data-weights')).toBe('nf4');
    await harness.shot('low-bit-2-chat');

    // Evaluate · General text: what the 4-bit base costs on that text against its 32-bit weights, as
    // `webtune score --weights nf4` (proven against the PyTorch reference) measures it.
    await page.getByText('General text (to see what the model forgot)').click();
    const text = await page.getByLabel('Text the adapter was not trained on').inputValue();
    await page.getByRole('button', { name: /What the 4-bit \(nf4\) base weights cost on this text/ }).click();
    const cost = page.locator('.weights-cost');
    await cost.waitFor({ timeout: 120_000 });
    expect(await cost.textContent()).toMatch(/Against the 32-bit model, 4-bit \(nf4\) weights move/);
    const cli = await runCli([
      'score',
      '--model',
      modelDir('stories260K'),
      '--weights',
      'nf4',
      '--backend',
      'wasm',
      '--text',
      text,
      '--json',
    ]);
    expect(cli.status, cli.stderr).toBe(0);
    const measured = jsonResult<{ against_f32: { mean_abs_logprob_diff: number; mean_kl: number } }>(
      cli,
    ).against_f32;
    expect(measured.mean_kl).toBeGreaterThan(1e-4);
    expect(Math.abs(Number(await cost.getAttribute('data-kl')) - measured.mean_kl)).toBeLessThan(1e-4);
    expect(
      Math.abs(Number(await cost.getAttribute('data-shift')) - measured.mean_abs_logprob_diff),
    ).toBeLessThan(1e-4);
    await harness.shot('low-bit-3-cost');
    expect(errors).toEqual([]);
  });
});
