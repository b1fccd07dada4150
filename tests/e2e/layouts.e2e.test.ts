// Every layout's fixture through the page, as a person does it: dropped on the Data step, named as the layout
// it is, previewed with what the model learns to write highlighted, and trained for an epoch to the end on
// stories260K-chat (whose chat template the conversations go through).
import { describe, expect, it } from 'vitest';
import { dataFile } from '../helpers/shared';
import { useHarness } from './browser';

const FIXTURES: [file: string, detected: string][] = [
  ['alpaca-system.jsonl', 'Read as: Alpaca instructions, 6 rows'],
  ['sharegpt.jsonl', 'Read as: ShareGPT conversations, 4 rows'],
  ['openai-chat.jsonl', 'Read as: OpenAI chat messages, 5 rows'],
  ['trl-prompt-completion.jsonl', 'Read as: prompt/completion pairs, 4 rows'],
  ['trl-conversational.jsonl', 'Read as: conversational prompt/completion, 4 rows'],
  ['notes.md', 'windows of at most 256 tokens'],
];

describe('each layout through the page', () => {
  const harness = useHarness();

  it('is detected, previewed and trained to the end', async () => {
    const { page } = harness;
    for (const [file, detected] of FIXTURES) {
      await page.goto(`${harness.baseUrl}/?model=/models/stories260K-chat`);
      await page.getByText('parameters').first().waitFor({ timeout: 60_000 });
      await page.getByLabel('Dataset file').setInputFiles(dataFile(file));
      const data = page.locator('section[aria-labelledby="data-heading"]');
      await data.getByText(detected).first().waitFor({ timeout: 30_000 });
      await expect
        .poll(() => data.locator('mark.completion').count(), { timeout: 30_000 })
        .toBeGreaterThan(0);
      await page.getByLabel('Epochs').fill('1');
      await page.getByRole('button', { name: 'Start training' }).click();
      const status = page.getByRole('status').filter({ hasText: 'Training complete' });
      await status.waitFor({ timeout: 120_000 });
      expect(await status.textContent(), file).toMatch(/train loss \d+\.\d+/);
    }
    expect(harness.cspViolations).toEqual([]);
  }, 300_000);
});
