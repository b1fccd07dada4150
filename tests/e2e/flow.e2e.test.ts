// The guided flow as a newcomer walks it in the built site: the step bar says where they are and what is
// done, a file dragged over the page shows the drop overlay, the tab title shows a run's progress, a run
// that ends in a background tab notifies, leaving mid-run asks first — and every step is photographed at
// desktop and phone width, in light and dark, to be looked at.
import fs from 'node:fs';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { dataFile } from '../helpers/shared';
import { dropFile, SCREENSHOTS, useHarness } from './browser';

const STEP_NAMES = ['Model', 'Data', 'Train', 'Evaluate', 'Compare', 'Export'];
const SECTIONS = ['model', 'data', 'train', 'evaluate', 'chat', 'library'];

/** Each step's state as the step bar shows it: done, current, open or locked. */
async function stepStates(page: Page): Promise<Record<string, string>> {
  const items = page.getByRole('navigation', { name: 'Steps' }).locator('li');
  const states = await items.evaluateAll((lis) =>
    lis.map(
      (li) =>
        li.className.split(/\s+/).find((c: string) => ['done', 'current', 'open', 'locked'].includes(c)) ??
        '',
    ),
  );
  return Object.fromEntries(STEP_NAMES.map((name, i) => [name, states[i]]));
}

async function shootSteps(page: Page, label: string): Promise<void> {
  for (const section of SECTIONS) {
    await page.locator(`section[aria-labelledby="${section}-heading"]`).scrollIntoViewIfNeeded();
    await page
      .locator(`#${section}-heading`)
      .evaluate((h) => h.closest('section')!.scrollIntoView({ block: 'start' }));
    await page.screenshot({ path: path.join(SCREENSHOTS, `flow-${label}-${section}.png`) });
  }
}

describe('the guided flow', () => {
  const harness = useHarness();

  it('walks Model → Data → Train → Evaluate → Compare → Export with the step bar, the overlay, the title and a notification', async () => {
    const { page } = harness;
    // Notifications recorded instead of shown, and a switch that makes the tab look hidden (a background
    // tab).
    await page.addInitScript(() => {
      const w = window as unknown as { __notes: string[]; __hidden: boolean };
      w.__notes = [];
      w.__hidden = false;
      class RecordedNotification {
        static permission = 'granted';
        static requestPermission = async () => 'granted';
        constructor(title: string, options?: { body?: string }) {
          w.__notes.push(`${title}: ${options?.body ?? ''}`);
        }
      }
      Object.defineProperty(window, 'Notification', { value: RecordedNotification, configurable: true });
      Object.defineProperty(document, 'visibilityState', {
        get: () => (w.__hidden ? 'hidden' : 'visible'),
        configurable: true,
      });
    });
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.emulateMedia({ colorScheme: 'light' });
    await page.goto(`${harness.baseUrl}/?model=/models/stories260K`);
    const bar = page.getByRole('navigation', { name: 'Steps' });
    await bar.waitFor();
    await page.getByText('260K parameters').waitFor({ timeout: 60_000 });
    expect(await stepStates(page)).toEqual({
      Model: 'done',
      Data: 'current',
      Train: 'locked',
      Evaluate: 'locked',
      Compare: 'locked',
      Export: 'locked',
    });
    expect(await bar.locator('li.locked').first().textContent()).toContain('needs your examples first');
    // A locked step says so where it stands on the page too.
    await page
      .locator('p.waiting[data-step="evaluate"]')
      .filter({ hasText: 'Evaluate opens once you have a trained adapter' })
      .waitFor();
    await harness.shot('flow-0-start');

    // A file dragged over the page: the overlay says what to drop.
    const transfer = await page.evaluateHandle(() => {
      const data = new DataTransfer();
      data.items.add(new File(['prompt,completion\n'], 'x.csv', { type: 'text/csv' }));
      return data;
    });
    await page.dispatchEvent('body', 'dragenter', { dataTransfer: transfer });
    await page.dispatchEvent('body', 'dragover', { dataTransfer: transfer });
    const overlay = page.locator('.drop-overlay');
    await overlay.getByText('Drop a CSV, TSV, JSONL or JSON file of examples').waitFor();
    await page.screenshot({ path: path.join(SCREENSHOTS, 'flow-1-drag-overlay.png') });
    await page.dispatchEvent('body', 'dragleave', { dataTransfer: transfer });
    await overlay.waitFor({ state: 'detached' });

    await dropFile(page, 'best-friends.csv', fs.readFileSync(dataFile('best-friends.csv'), 'utf8'));
    await page.getByText(/for training, \d+ for validation/).waitFor({ timeout: 30_000 });
    await expect.poll(() => stepStates(page)).toMatchObject({ Data: 'done', Train: 'current' });

    // Training: the tab title and the Train step show the share done; leaving asks first.
    await page.getByLabel('Epochs').fill('12');
    await page.getByLabel('Learning rate').fill('0.01');
    await page.evaluate(() => ((window as unknown as { __hidden: boolean }).__hidden = true));
    await page.getByRole('button', { name: 'Start training' }).click();
    await expect.poll(() => page.title(), { timeout: 60_000 }).toMatch(/^\d+% · training — webtune$/);
    expect(await bar.locator('li.current').textContent()).toMatch(/Train\s*\d+%/);
    const asks = await page.evaluate(() => {
      const event = new Event('beforeunload', { cancelable: true });
      window.dispatchEvent(event);
      return event.defaultPrevented;
    });
    expect(asks, 'leaving mid-run must ask first').toBe(true);
    await page.getByRole('status').filter({ hasText: 'Training complete' }).waitFor({ timeout: 240_000 });
    expect(await page.title()).toBe('webtune');
    // It finished in a "background" tab, so a notification said so.
    await expect
      .poll(() => page.evaluate(() => (window as unknown as { __notes: string[] }).__notes))
      .toEqual([expect.stringMatching(/^webtune: training finished: The adapter is ready/)]);
    await page.evaluate(() => ((window as unknown as { __hidden: boolean }).__hidden = false));

    // The loss chart has named axes and reads out the values under the pointer, or step by step from the
    // keyboard.
    const trainSection = page.locator('section[aria-labelledby="train-heading"]');
    const chart = trainSection.getByRole('slider', { name: 'Loss per step: training and validation' });
    expect(await chart.locator('text.axis').allTextContents()).toEqual(['step', 'loss']);
    const box = (await chart.boundingBox())!;
    await page.mouse.move(box.x + box.width * 0.5, box.y + box.height * 0.4);
    const readout = trainSection.locator('.readout');
    await expect
      .poll(() => readout.textContent())
      .toMatch(/^Step \d+: training loss \d+\.\d{3}, validation loss \d+\.\d{3}/);
    const hovered = Number(/^Step (\d+)/.exec((await readout.textContent())!)![1]);
    await chart.focus();
    await page.keyboard.press('ArrowLeft');
    await expect
      .poll(async () => Number(/^Step (\d+)/.exec((await readout.textContent()) ?? '')?.[1]))
      .toBe(hovered - 1);
    await trainSection
      .locator('figure')
      .first()
      .screenshot({ path: path.join(SCREENSHOTS, 'flow-2-chart-hover.png') });
    await expect
      .poll(() => stepStates(page))
      .toEqual({
        Model: 'done',
        Data: 'done',
        Train: 'done',
        Evaluate: 'current',
        Compare: 'open',
        Export: 'open',
      });
    expect(await page.locator('p.waiting').count()).toBe(0);
    // Not training any more: leaving does not ask.
    expect(
      await page.evaluate(() => {
        const e = new Event('beforeunload', { cancelable: true });
        window.dispatchEvent(e);
        return e.defaultPrevented;
      }),
    ).toBe(false);

    // The step bar jumps to a step, and focus goes with it.
    await bar.getByRole('link', { name: /Compare/ }).click();
    await expect.poll(() => page.evaluate(() => document.activeElement?.id)).toBe('chat-heading');
    await page.getByLabel('Message').fill('Who is Tom?');
    await expect
      .poll(() => page.getByRole('button', { name: 'Send', exact: true }).isEnabled(), { timeout: 60_000 })
      .toBe(true);
    await page.getByLabel('Message').press('Enter');
    await expect.poll(() => stepStates(page), { timeout: 60_000 }).toMatchObject({ Compare: 'done' });

    // Once the chat has answered, the estimate for another run is measured again (it waits while the model is
    // busy).
    await page
      .locator('section[aria-labelledby="train-heading"] .estimate .figure')
      .waitFor({ timeout: 60_000 });

    const item = page.locator('section[aria-labelledby="library-heading"]').getByRole('listitem').first();
    await Promise.all([
      page.waitForEvent('download'),
      item.getByRole('button', { name: 'Download adapter' }).click(),
    ]);
    await expect.poll(() => stepStates(page)).toMatchObject({ Export: 'done' });
    await shootSteps(page, 'desktop-light');

    // The same page at phone width in dark mode, every step photographed.
    await page.setViewportSize({ width: 390, height: 844 });
    await page.emulateMedia({ colorScheme: 'dark' });
    const overflow = await page.evaluate(() => {
      const width = document.documentElement.clientWidth;
      // The deepest elements that stick out, to name in the failure.
      // (What scrolls inside its own box, like the step bar's list, does not count.)
      const scrolls = (e: Element) => !!e.parentElement?.closest('ol, .scroll, pre, table');
      const wide = [...document.querySelectorAll('body *')].filter(
        (e) =>
          !scrolls(e) &&
          e.getBoundingClientRect().right > width + 1 &&
          ![...e.children].some((c) => c.getBoundingClientRect().right > width + 1),
      );
      return {
        by: document.documentElement.scrollWidth - width,
        what: wide.slice(0, 5).map((e) => `${e.tagName.toLowerCase()}.${e.className}`),
      };
    });
    expect(
      overflow.by,
      `nothing may stick out sideways at phone width: ${overflow.what.join(', ')}`,
    ).toBeLessThanOrEqual(0);
    await shootSteps(page, 'phone-dark');
    await page.setViewportSize({ width: 1280, height: 900 });
    await shootSteps(page, 'desktop-dark');
    await page.setViewportSize({ width: 390, height: 844 });
    await page.emulateMedia({ colorScheme: 'light' });
    await shootSteps(page, 'phone-light');
  });
});
