// A Hub model is built from its file in the origin private file system, read a tensor at a time through a
// sync access handle (issue 22), not from a copy in memory: while another holder keeps the file open the load
// is refused with a message saying so (it would not be if the bytes were read whole), and once it is closed
// the model loads and chats exactly as the same model from the page's server does.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startHubServer, type HubServer } from '../helpers/hub-server';
import { modelDir } from '../helpers/shared';
import { externalRequests, openHarness, type Harness } from './browser';

const STORIES = 'webtune-test/stories260K';

describe('a Hub model read from OPFS', () => {
  let harness: Harness;
  let hub: HubServer;
  const pane = (name: string) => harness.page.getByRole('region', { name, exact: true });

  beforeAll(async () => {
    hub = await startHubServer({ repos: { [STORIES]: modelDir('stories260K') } });
    harness = await openHarness();
  });
  beforeEach(() => harness.clearSiteData());
  afterAll(async () => {
    expect(externalRequests(harness.requests)).toEqual([]);
    await harness.close();
    await hub.close();
  });

  /** The base model's greedy answer to `message` (the chat decodes at temperature 0). */
  async function answer(message: string): Promise<string> {
    const { page } = harness;
    const composer = page.locator('.composer');
    await page.getByLabel('Message').fill(message);
    await expect
      .poll(() => composer.getByRole('button', { name: 'Send', exact: true }).isEnabled(), {
        timeout: 60_000,
      })
      .toBe(true);
    await page.getByLabel('Message').press('Enter');
    const done = pane('Base model').locator('li.assistant:not(.streaming) .text').last();
    await done.waitFor({ timeout: 60_000 });
    await composer.getByRole('button', { name: 'Stop', exact: true }).waitFor({ state: 'detached' });
    return (await done.textContent()) ?? '';
  }

  /** Opens the cached model.safetensors for writing in the page, as another tab would hold it. */
  const holdWeights = () =>
    harness.page.evaluate(
      async ([host, id]) => {
        let dir = await (await navigator.storage.getDirectory()).getDirectoryHandle('webtune-models');
        for (const part of [`http+${host}`, ...id.split('/'), 'main'])
          dir = await dir.getDirectoryHandle(part);
        const file = await dir.getFileHandle('model.safetensors');
        (window as unknown as { held: FileSystemWritableFileStream }).held = await file.createWritable({
          keepExistingData: true,
        });
      },
      [new URL(hub.url).host, STORIES],
    );
  const release = () =>
    harness.page.evaluate(() => (window as unknown as { held: FileSystemWritableFileStream }).held.abort());

  it('is refused while the file is held elsewhere, then loads from the file and chats as from the server', async () => {
    const { page } = harness;
    await page.goto(`${harness.baseUrl}/?hf_endpoint=${encodeURIComponent(hub.url)}`);
    await page.getByText('Choose a model').waitFor();
    await page.getByLabel('Model id').fill(STORIES);
    await page.getByRole('button', { name: 'Load model', exact: true }).click();
    await page.getByText('260K parameters').waitFor({ timeout: 60_000 });

    await holdWeights();
    try {
      await page.getByText('Choose a model').click();
      await page.getByLabel('Model id').fill(STORIES);
      await page.getByRole('button', { name: 'Load model', exact: true }).click();
      await page
        .getByRole('alert')
        .filter({
          hasText: `model.safetensors of ${STORIES} is open in another tab of webtune, which is loading, exporting or downloading that model. Wait until it is done there, or close that tab, then try again.`,
        })
        .waitFor({ timeout: 60_000 });
    } finally {
      await release();
    }

    const requests = hub.requests.length;
    await page.goto(`${harness.baseUrl}/?hf_endpoint=${encodeURIComponent(hub.url)}&model=${STORIES}`);
    await page.getByText('loaded without the network').waitFor({ timeout: 60_000 });
    expect(hub.requests.length).toBe(requests);
    const fromFile = await answer('Once upon a time');
    expect(fromFile.length).toBeGreaterThan(0);

    // The same model from the page's server, read into memory: the same greedy answer.
    await page.goto(`${harness.baseUrl}/?model=/models/stories260K`);
    await page.getByText('260K parameters').waitFor({ timeout: 60_000 });
    expect(await answer('Once upon a time')).toBe(fromFile);
  }, 180_000);

  it('writes a ?model= folder of unknown size to a scratch file as it arrives, reads it, and deletes it', async () => {
    const { page } = harness;
    // Without Content-Length the size is unknown, so the weights go to a scratch file rather than memory.
    hub.setFault('model.safetensors', { kind: 'no-length' });
    const folder = `${hub.url}/${STORIES}/resolve/main`;
    await page.goto(`${harness.baseUrl}/?model=${encodeURIComponent(folder)}`);
    await page.getByRole('button', { name: 'Download and load it' }).click();
    await page.getByText('260K parameters').waitFor({ timeout: 60_000 });
    expect(
      hub.requests.filter((r) => r.path.endsWith('/model.safetensors') && r.fault === 'no-length'),
    ).toHaveLength(1);
    // The scratch folder was made, and its file deleted once the model was built.
    const scratch = await page.evaluate(async () => {
      const root = await navigator.storage.getDirectory();
      const dir = await root.getDirectoryHandle('webtune-scratch').catch(() => null);
      if (!dir) return null;
      const names: string[] = [];
      for await (const name of (dir as unknown as { keys(): AsyncIterable<string> }).keys()) names.push(name);
      return names;
    });
    expect(scratch).toEqual([]);
    const fromScratch = await answer('Once upon a time');

    await page.goto(`${harness.baseUrl}/?model=/models/stories260K`);
    await page.getByText('260K parameters').waitFor({ timeout: 60_000 });
    expect(await answer('Once upon a time')).toBe(fromScratch);
  }, 180_000);
});
