// Models by Hub id in the page, against a local Hub double on another 127.0.0.1 port (?hf_endpoint=):
// per-file progress, Cancel, resuming what was downloaded, loading from the device cache with the
// server stopped, deleting the cache, and clear errors — no request leaves 127.0.0.1.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startHubServer, type HubServer } from '../helpers/hub-server';
import { modelDir } from '../helpers/shared';
import { externalRequests, openHarness, type Harness } from './browser';

const SCREENSHOTS = path.resolve(__dirname, '..', '..', 'test-results', 'screenshots');
const STORIES = 'webtune-test/stories260K';
const GPT2 = 'webtune-test/gpt2-shaped';

describe('models from the Hub in the page', () => {
  let harness: Harness;
  let hub: HubServer;
  const open = (query = '') =>
    harness.page.goto(`${harness.baseUrl}/?hf_endpoint=${encodeURIComponent(hub.url)}${query}`);
  const weightRequests = () =>
    hub.requests.filter((r) => r.path === `/${STORIES}/resolve/main/model.safetensors` && r.method === 'GET');

  beforeAll(async () => {
    fs.mkdirSync(SCREENSHOTS, { recursive: true });
    const gpt2 = fs.mkdtempSync(path.join(os.tmpdir(), 'webtune-gpt2-'));
    for (const f of fs.readdirSync(modelDir('stories260K')))
      fs.copyFileSync(path.join(modelDir('stories260K'), f), path.join(gpt2, f));
    fs.writeFileSync(path.join(gpt2, 'config.json'), JSON.stringify({ model_type: 'gpt2', n_embd: 64 }));
    hub = await startHubServer({ repos: { [STORIES]: modelDir('stories260K'), [GPT2]: gpt2 } });
    harness = await openHarness();
  });
  // Every test starts with nothing cached on the device and a Hub that answers normally: they pass in any
  // order and alone.
  beforeEach(async () => {
    hub.clearFaults();
    await harness.clearSiteData();
  });
  afterAll(async () => {
    expect(externalRequests(harness.requests)).toEqual([]);
    await harness.close();
    await hub.close();
  });

  it('shows per-file progress, cancels, then resumes from what was downloaded, also after a dropped connection', async () => {
    const { page } = harness;
    await open();
    await page.getByText('Choose a model').waitFor();
    // Before any estimate, every catalog model has a time per step from the backend's calibration product.
    const rows = page.locator('.catalog li');
    await expect
      .poll(
        async () => {
          const texts = await rows.allTextContents();
          return texts.length > 5 && texts.every((t) => /about \S+ \S+ a step here/.test(t)) ? 'all' : texts;
        },
        { timeout: 30_000 },
      )
      .toBe('all');
    hub.setFault('model.safetensors', { kind: 'slow', bytesPerSecond: 100_000 });
    await page.getByLabel('Model id').fill(STORIES);
    await page.getByRole('button', { name: 'Load model', exact: true }).click();
    await page.getByRole('progressbar', { name: 'Model download' }).waitFor({ timeout: 30_000 });
    await page
      .getByText(/model\.safetensors: \d+\.\d MB of 1\.\d MB · \d+\.\d MB\/s/)
      .waitFor({ timeout: 30_000 });
    await page
      .locator('section[aria-labelledby="model-heading"]')
      .screenshot({ path: path.join(SCREENSHOTS, '7-hub-downloading.png') });
    await page.getByRole('button', { name: 'Cancel download' }).click();
    await page.getByRole('alert').filter({ hasText: 'Download of model.safetensors cancelled' }).waitFor();

    // Load again, and the connection drops part-way: it resumes twice, never from zero.
    hub.clearFaults();
    hub.setFault('model.safetensors', { kind: 'drop', afterBytes: 200_000 });
    const before = weightRequests().length;
    await page.getByRole('button', { name: 'Load model', exact: true }).click();
    await page.getByText('260K parameters').waitFor({ timeout: 60_000 });
    const requests = weightRequests().slice(before);
    expect(requests).toHaveLength(2);
    for (const r of requests) expect(r.range).toMatch(/^bytes=[1-9]\d*-$/);
    await page.getByText('Models on this device').click();
    const cached = page.getByRole('list', { name: 'Models on this device' });
    await expect(cached.textContent()).resolves.toContain(STORIES);
    // Kept under the whole endpoint origin (scheme, host and port), not the host alone.
    await expect(cached.textContent()).resolves.toContain(`http+${new URL(hub.url).host}`);
  }, 120_000);

  it('loads the cached model with the server stopped; deleting it frees the space', async () => {
    const { page } = harness;
    // Downloaded once while the server is up.
    await open();
    await page.getByText('Choose a model').waitFor();
    await page.getByLabel('Model id').fill(STORIES);
    await page.getByRole('button', { name: 'Load model', exact: true }).click();
    await page.getByText('260K parameters').waitFor({ timeout: 60_000 });
    await hub.stop();
    try {
      const before = hub.requests.length;
      await open(`&model=${STORIES}`);
      await page.getByText('loaded without the network').waitFor({ timeout: 60_000 });
      expect(hub.requests.length).toBe(before);
      await page.getByText('Models on this device').click();
      await page.getByRole('button', { name: `Delete ${STORIES} from this device` }).click();
      await expect.poll(() => page.getByRole('list', { name: 'Models on this device' }).count()).toBe(0);
      await page.getByText('Choose a model').click();
      await page.getByLabel('Model id').fill(STORIES);
      await page.getByRole('button', { name: 'Load model', exact: true }).click();
      await page
        .getByRole('alert')
        .filter({ hasText: 'could not reach 127.0.0.1' })
        .waitFor({ timeout: 60_000 });
    } finally {
      await hub.start();
    }
  }, 120_000);

  it('a link naming a model to download asks first, shows where from, and warns when it is not the Hub', async () => {
    const { page } = harness;
    // Nothing is cached (see beforeEach), so the link has something to ask about.
    const before = hub.requests.length;
    await open(`&model=${STORIES}`);
    const ask = page.getByRole('region', { name: 'Model from a link' });
    await ask.waitFor({ timeout: 30_000 });
    const origin = new URL(hub.url).origin;
    await expect(ask.textContent()).resolves.toContain(
      `This link asks to download the model ${STORIES} from ${origin}.`,
    );
    await expect(ask.textContent()).resolves.toContain(`${origin} is not the Hugging Face Hub.`);
    await page
      .locator('section[aria-labelledby="model-heading"]')
      .screenshot({ path: path.join(SCREENSHOTS, '9-hub-link-asks.png') });
    // Nothing is fetched until the person agrees.
    expect(hub.requests.length).toBe(before);
    await page.getByRole('button', { name: 'Download and load it' }).click();
    await page.getByText('260K parameters').waitFor({ timeout: 60_000 });
    expect(hub.requests.length).toBeGreaterThan(before);

    // A model folder on another origin is treated the same way: shown with its origin, and waits.
    const folder = `${hub.url}/${STORIES}/resolve/main`;
    const beforeFolder = hub.requests.length;
    await page.goto(`${harness.baseUrl}/?model=${encodeURIComponent(folder)}`);
    await ask.waitFor({ timeout: 30_000 });
    await expect(ask.textContent()).resolves.toContain(
      `This link asks to download the model ${folder} from ${origin}.`,
    );
    await expect(ask.textContent()).resolves.toContain(`${origin} is not the Hugging Face Hub.`);
    expect(hub.requests.length).toBe(beforeFolder);
  }, 120_000);

  it('a link whose hf_endpoint has a path is refused, naming it, and nothing is requested', async () => {
    const { page } = harness;
    const before = hub.requests.length;
    const poisoned = `${hub.url}/${STORIES}/resolve/main/x`;
    await page.goto(`${harness.baseUrl}/?hf_endpoint=${encodeURIComponent(poisoned)}&model=${STORIES}`);
    await page
      .getByRole('alert')
      .filter({
        hasText: `"${poisoned}" cannot be used as the Hub endpoint: it has a path, query or fragment.`,
      })
      .waitFor({ timeout: 30_000 });
    await expect(page.getByRole('region', { name: 'Model from a link' }).count()).resolves.toBe(0);
    expect(hub.requests.length).toBe(before);
  }, 60_000);

  it('says clearly when a model does not exist or its architecture is unsupported, before any weights', async () => {
    const { page } = harness;
    await open();
    await page.getByText('Choose a model').waitFor();
    await page.getByLabel('Model id').fill('nobody/nothing');
    await page.getByRole('button', { name: 'Load model', exact: true }).click();
    await page
      .getByRole('alert')
      .filter({ hasText: 'There is no model "nobody/nothing" on the Hub' })
      .waitFor({ timeout: 30_000 });
    await page.getByLabel('Model id').fill(GPT2);
    await page.getByRole('button', { name: 'Load model', exact: true }).click();
    await page
      .getByRole('alert')
      .filter({ hasText: 'Model type "gpt2" is not supported' })
      .waitFor({ timeout: 30_000 });
    expect(
      hub.requests.filter((r) => r.path.startsWith(`/${GPT2}/`) && r.path.endsWith('.safetensors')),
    ).toEqual([]);
    await page.screenshot({ path: path.join(SCREENSHOTS, '8-hub-unsupported.png') });
  }, 60_000);
});
