// "Try an example", as a newcomer without a file does it: the empty Data step is a large drop target that
// shows the formats; one click opens the built-in support tickets (fetched from the site itself, stored,
// previewed, counted, labels summarised), a short run trains it, and the Compare step answers a quick prompt
// side by side. No file is chosen or dropped at any point.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BUILTIN_EXAMPLES, LAYOUT_SAMPLES } from '../../src/ui/examples';
import { SCREENSHOTS, useHarness } from './browser';

const TICKETS = fs
  .readFileSync(path.resolve(__dirname, '..', '..', 'public', 'examples', 'support-tickets.csv'), 'utf8')
  .trim()
  .split('\n')
  .slice(1);
const departmentOf = new Map(
  TICKETS.map((line) => [
    line.slice(0, line.lastIndexOf(',')).replace(/^"|"$/g, ''),
    line.slice(line.lastIndexOf(',') + 1),
  ]),
);

describe('the examples to try', () => {
  const harness = useHarness({ fresh: true });

  it('opens the support tickets from an empty Data step, trains them and compares answers, without any file', async () => {
    const { page } = harness;
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.goto(`${harness.baseUrl}/?model=/models/stories260K`);
    await page.getByText('260K parameters').waitFor({ timeout: 60_000 });
    const data = page.locator('section[aria-labelledby="data-heading"]');
    // A file input never used: a chooser opening would mean the test (or the page) asked for a file.
    let chooserOpened = false;
    page.on('filechooser', () => (chooserOpened = true));

    // Empty: a large dashed target with the formats and one line of each layout, the file input still there.
    const target = data.locator('.drop.empty');
    await target
      .getByText(
        'Drop a CSV, TSV, JSONL or JSON file of examples here, a spreadsheet (.xlsx, .ods) or documents (.txt, .md), or choose one',
      )
      .waitFor();
    expect(await data.getByLabel('Dataset file').count()).toBe(1);
    for (const sample of LAYOUT_SAMPLES) {
      await target.getByText(sample.name, { exact: true }).waitFor();
      expect(
        await target
          .locator('code')
          .filter({ hasText: sample.text.split('\n')[0] })
          .count(),
      ).toBe(1);
    }
    const box = (await target.boundingBox())!;
    expect(box.height).toBeGreaterThan(250);
    expect(await target.evaluate((el) => getComputedStyle(el).borderStyle)).toBe('dashed');
    await data.screenshot({ path: path.join(SCREENSHOTS, 'examples-1-empty-data-step.png') });

    // The examples: one card each, its sentence as the button's description.
    const examples = data.getByRole('group', { name: 'Try an example' });
    for (const example of BUILTIN_EXAMPLES) {
      const button = examples.getByRole('button', { name: example.title, exact: true });
      expect(
        await button.getAttribute('aria-describedby').then((id) => page.locator(`#${id}`).textContent()),
      ).toBe(example.description);
    }
    await examples.screenshot({ path: path.join(SCREENSHOTS, 'examples-2-cards.png') });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.emulateMedia({ colorScheme: 'dark' });
    await data.screenshot({ path: path.join(SCREENSHOTS, 'examples-3-empty-data-step-phone-dark.png') });
    await page.emulateMedia({ colorScheme: 'light' });
    await page.setViewportSize({ width: 1280, height: 900 });

    await examples.getByRole('button', { name: 'Route support tickets', exact: true }).click();
    // Previewed and counted like a dropped file: all 40 rows, the default split, tokens from the model's
    // tokenizer.
    await data.getByText('What the model will see').waitFor();
    await data
      .getByText(
        /support-tickets\.csv: 40 rows, 40 examples, \d+ tokens ·\s+36 for training, 4 for validation/,
      )
      .waitFor({ timeout: 30_000 });
    const firstRow = data.locator('.preview li').first();
    expect(departmentOf.get((await firstRow.locator('.context').textContent())!.trim())).toBe(
      await firstRow.locator('mark.completion').textContent(),
    );
    // Label detection: four balanced departments, each among the held-out examples.
    const labels = data.getByRole('note', { name: 'Labels' });
    await labels
      .getByText(
        'The completions are 4 labels: Account (10), Billing (10), Shipping (10), Technical (10) — balanced.',
      )
      .waitFor();
    await labels.getByText('The held-out examples have every label.').waitFor();
    // Stored on the device like any file, fetched from the site itself.
    await data.getByText('Your datasets on this device (1)').waitFor();
    expect(harness.requests.filter((url) => url.endsWith('/examples/support-tickets.csv'))).toHaveLength(1);
    // Open, the drop target shrinks to the normal view; the examples stay at hand, the open one greyed.
    expect(await data.locator('.drop.empty').count()).toBe(0);
    expect(await data.getByText('Drop a CSV, TSV, JSONL or JSON file of examples here').count()).toBe(0);
    const compact = data.getByRole('group', { name: 'Or try an example' });
    expect(await compact.getByRole('button', { name: 'Route support tickets' }).isDisabled()).toBe(true);
    expect(await compact.getByRole('button', { name: 'Answer product questions' }).isEnabled()).toBe(true);
    await data.screenshot({ path: path.join(SCREENSHOTS, 'examples-4-tickets-open.png') });

    // A short run: the example is small enough to train in well under a minute (on a machine running other
    // tests too, this bound leaves room; alone it takes a fraction of it).
    await page.getByLabel('Epochs').fill('6');
    await page.getByLabel('Learning rate').fill('0.01');
    const started = Date.now();
    await page.getByRole('button', { name: 'Start training' }).click();
    const done = page.getByRole('status').filter({ hasText: 'Training complete' });
    await done.waitFor({ timeout: 240_000 });
    const seconds = (Date.now() - started) / 1000;
    console.log(`support tickets: ${await done.textContent()} in ${seconds.toFixed(1)} s`);
    expect(seconds, `trained in ${seconds.toFixed(1)} s`).toBeLessThan(90);
    expect(await done.textContent()).toMatch(/after 54 steps/);
    const [, trainLoss] = /train loss (\d+\.\d+)/.exec((await done.textContent())!)!;
    // The untrained model is far above this on any text (see tests/train.test.ts); the labels are learned.
    expect(Number(trainLoss)).toBeLessThan(2);

    // Compare: a held-out ticket as a quick prompt, answered by both models side by side, the expected
    // department shown.
    const quick = page.getByRole('group', { name: 'Quick prompts' }).getByRole('button');
    const ticket = (await quick.first().textContent())!.trim();
    expect(departmentOf.has(ticket)).toBe(true);
    await quick.first().click();
    await page
      .getByRole('note')
      .filter({ hasText: `Expected (from the data): ${departmentOf.get(ticket)}` })
      .waitFor();
    const answer = (pane: string) =>
      page
        .getByRole('region', { name: pane, exact: true })
        .locator('li.assistant:not(.streaming) .text')
        .first();
    await Promise.all(
      ['Base model', 'Fine-tuned model'].map((pane) => answer(pane).waitFor({ timeout: 60_000 })),
    );
    const [base, tuned] = await Promise.all(
      ['Base model', 'Fine-tuned model'].map(async (pane) => (await answer(pane).textContent()) ?? ''),
    );
    expect(base.length).toBeGreaterThan(0);
    expect(tuned.length).toBeGreaterThan(0);
    // The adapter steers the tiny model: its answer starts with one of the departments, the base model's does
    // not.
    expect(
      ['Account', 'Billing', 'Shipping', 'Technical'].some((d) => tuned.trim().startsWith(d)),
      tuned,
    ).toBe(true);
    expect(base).not.toBe(tuned);
    await page
      .locator('section[aria-labelledby="chat-heading"]')
      .screenshot({ path: path.join(SCREENSHOTS, 'examples-5-compare.png') });
    await harness.shot('examples-6-page');
    expect(chooserOpened).toBe(false);
  }, 400_000);

  it('says so when an example cannot be fetched, and opens the other two with their layouts detected', async () => {
    const { page } = harness;
    await page.goto(`${harness.baseUrl}/?model=/models/stories260K-chat`);
    await page.getByText('has a chat template').waitFor({ timeout: 60_000 });
    const data = page.locator('section[aria-labelledby="data-heading"]');
    // The Data step opens empty on each visit, whatever is stored on the device.
    await data.locator('.drop.empty').waitFor();
    const examples = data.getByRole('group', { name: 'Try an example' });

    // The site does not serve the file (a broken deployment): the step says what happened and what to do.
    await page.route('**/examples/product-questions.jsonl', (route) =>
      route.fulfill({ status: 404, body: 'not here' }),
    );
    await examples.getByRole('button', { name: 'Answer product questions', exact: true }).click();
    await data
      .getByRole('alert')
      .filter({
        hasText:
          'The example "Answer product questions" could not be loaded (the site answered 404). Reload the page and try again, or drop a file of your own.',
      })
      .waitFor();
    expect(await data.locator('.drop.empty').count()).toBe(1);
    await page.unroute('**/examples/product-questions.jsonl');

    // Served again: question/answer columns, free text (no label summary).
    await examples.getByRole('button', { name: 'Answer product questions', exact: true }).click();
    await data
      .getByText(/product-questions\.jsonl: 36 rows, 36 examples, \d+ tokens/)
      .waitFor({ timeout: 30_000 });
    expect(await data.getByRole('alert').count()).toBe(0);
    expect(await data.getByLabel('Prompt template').inputValue()).toBe('{question}');
    expect(await data.getByLabel('Completion template').inputValue()).toBe('{answer}');
    expect(await data.getByRole('note', { name: 'Labels' }).count()).toBe(0);

    // The persona, from the smaller buttons shown once a dataset is open: a chat in the model's template.
    await data
      .getByRole('group', { name: 'Or try an example' })
      .getByRole('button', { name: 'Chat as a museum guide' })
      .click();
    await data
      .getByText(/pirate-guide\.jsonl: 30 rows, 30 examples, \d+ tokens/)
      .waitFor({ timeout: 30_000 });
    expect(await data.getByLabel('Prompt template').count()).toBe(0); // the messages say who speaks
    expect(await data.getByLabel("Use the model's chat template").isChecked()).toBe(true);
    await data.locator('.preview li .context', { hasText: 'Captain Maren' }).first().waitFor();
    expect(await data.locator('.preview li').count()).toBe(5);
    expect(await data.getByText('(cut)').count()).toBe(0);
    await data.screenshot({ path: path.join(SCREENSHOTS, 'examples-7-persona-open.png') });
  }, 120_000);
});
