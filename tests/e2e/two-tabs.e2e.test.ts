/**
 * Two tabs of webtune on one device share its storage. A run being trained (or paused) in one tab is
 * not offered for resuming in the other — both would write one checkpoint — until the first lets go.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { dataFile } from '../helpers/shared';
import { checkpointSteps, SCREENSHOTS, useHarness } from './browser';

describe('two tabs', () => {
  const harness = useHarness();

  it('the second tab says the run is open elsewhere instead of offering to resume it, until the first stops', async () => {
    const { page: first } = harness;
    await first.goto(`${harness.baseUrl}/?model=/models/stories260K`);
    await first.getByText('260K parameters').waitFor({ timeout: 60_000 });
    await first.getByLabel('Dataset file').setInputFiles(dataFile('best-friends.csv'));
    await first.getByText('What the model will see').waitFor();
    await first.getByLabel('Epochs').fill('40');
    await first.getByRole('button', { name: 'Start training' }).click();
    // Past the first checkpoint (every 5 steps), so the run is saved where the second tab can see it.
    await expect
      .poll(async () => (await checkpointSteps(first)).length, { timeout: 60_000 })
      .toBeGreaterThan(0);
    await first.getByRole('button', { name: 'Pause' }).click();
    await first.getByRole('status').filter({ hasText: 'Paused after step' }).waitFor({ timeout: 30_000 });

    const second = await first.context().newPage();
    await second.goto(`${harness.baseUrl}/?model=/models/stories260K`);
    const offer = second.getByRole('region', { name: 'Unfinished training run' });
    await offer.waitFor({ timeout: 60_000 });
    await expect(offer.textContent()).resolves.toContain('It is open in another tab of webtune right now.');
    await expect(second.getByRole('button', { name: 'Resume training' }).count()).resolves.toBe(0);
    await second.screenshot({
      path: path.join(SCREENSHOTS, '14-run-open-in-another-tab.png'),
      fullPage: true,
    });

    // The first tab stops: the run is no longer anyone's, and the second tab may take it up.
    await first.getByRole('button', { name: 'Stop' }).click();
    await first.getByRole('status').filter({ hasText: 'Training stopped' }).waitFor({ timeout: 30_000 });
    await second.getByRole('button', { name: 'Check again' }).click();
    await second.getByRole('button', { name: 'Resume training' }).waitFor({ timeout: 10_000 });
    await second.close();
  });
});
