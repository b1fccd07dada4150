// The Hugging Face account, publishing and adding adapters by id in the page, against the Hub double on
// another 127.0.0.1 port (?hf_endpoint=): a token is checked, shown masked and forgotten; an adapter is
// published after the page shows what it will send, and arrives byte for byte in the double; it is added back
// by id and answers in the chat; the token goes only with the requests that need it, and a link alone sends
// nothing.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { unzipSync } from 'fflate';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adapterZip } from '../helpers/hub-adapter';
import { startHubServer, type HubServer } from '../helpers/hub-server';
import { modelDir } from '../helpers/shared';
import { externalRequests, openHarness, SCREENSHOTS, type Harness } from './browser';

const STORIES = 'webtune-test/stories260K';
const GATED = 'webtune-test/gated-stories';
const TOKEN = 'hf_pageTestTokenOfAda4242';

describe('the Hub account, publishing and adapters by id in the page', () => {
  let harness: Harness;
  let hub: HubServer;
  let zipPath: string;
  // Strong enough to change the story the model tells, so the chat shows which adapter it uses.
  const zip = adapterZip(4, 0.5);
  const pane = (name: string) => harness.page.getByRole('region', { name, exact: true });
  const library = () => harness.page.locator('section[aria-labelledby="library-heading"]');
  const open = () => harness.page.goto(`${harness.baseUrl}/?hf_endpoint=${encodeURIComponent(hub.url)}`);
  /** Until no pane is answering ("New conversation" is disabled while one is). */
  const chatIdle = () =>
    expect
      .poll(
        () =>
          harness.page
            .locator('.composer')
            .getByRole('button', { name: 'New conversation', exact: true })
            .isEnabled(),
        { timeout: 60_000 },
      )
      .toBe(true);
  /** Both panes' answers to `message`, once the chat has finished answering. */
  async function ask(message: string): Promise<[string, string]> {
    const { page } = harness;
    await chatIdle();
    const panes = ['Base model', 'Fine-tuned model'].map(pane);
    const before = await Promise.all(panes.map((p) => p.locator('li.assistant').count()));
    await page.getByLabel('Message').fill(message);
    await page.getByLabel('Message').press('Enter');
    await Promise.all(
      panes.map((p, i) =>
        p.locator('li.assistant:not(.streaming)').nth(before[i]).waitFor({ timeout: 60_000 }),
      ),
    );
    await chatIdle();
    const [base, tuned] = await Promise.all(
      panes.map(async (p, i) => (await p.locator('li.assistant .text').nth(before[i]).textContent()) ?? ''),
    );
    return [base, tuned];
  }

  beforeAll(async () => {
    fs.mkdirSync(SCREENSHOTS, { recursive: true });
    zipPath = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'webtune-hub-e2e-')), 'tickets.zip');
    fs.writeFileSync(zipPath, zip);
    hub = await startHubServer({
      repos: { [STORIES]: modelDir('stories260K'), [GATED]: modelDir('stories260K') },
      tokens: { [TOKEN]: { name: 'ada', role: 'write' } },
      gated: { [GATED]: ['ada'] },
    });
    harness = await openHarness();
    await harness.clearSiteData();
  });
  afterAll(async () => {
    expect(externalRequests(harness.requests)).toEqual([]);
    expect(harness.cspViolations).toEqual([]);
    await harness.close();
    await hub.close();
  });

  it('checks and saves a token, publishes an adapter, adds it back by id for the chat, and forgets the token', async () => {
    const { page } = harness;
    await open();
    await page.getByText('Choose a model').waitFor();
    // A gated model without a token: the page says so and links to the page where the licence is accepted.
    await page.getByLabel('Model id').fill(GATED);
    await page.getByRole('button', { name: 'Load model', exact: true }).click();
    const gated = page.getByRole('alert').filter({ hasText: `${GATED} is gated (401)` });
    await gated.waitFor({ timeout: 60_000 });
    expect(await gated.getByRole('link').getAttribute('href')).toBe(`${hub.url}/${GATED}`);
    await page.getByLabel('Model id').fill(STORIES);
    await page.getByRole('button', { name: 'Load model', exact: true }).click();
    await page.getByText('260K parameters').waitFor({ timeout: 60_000 });
    await library().getByLabel('Import adapter (.zip)').setInputFiles(zipPath);
    await library().getByText('Imported tickets').waitFor();
    // What the imported adapter says, to compare with the same adapter once it comes back from the Hub.
    const [base, imported] = await ask('Once upon a time');
    expect(imported).not.toBe(base);

    // The token: checked with whoami, then shown masked with its account and role; the field is emptied.
    const account = library().getByRole('region', { name: 'Hugging Face account' });
    await account.getByLabel('Access token').fill(TOKEN);
    await account.getByRole('button', { name: 'Check and save token' }).click();
    await account.getByText('Token hf_…4242 of ada').waitFor();
    await expect(account.textContent()).resolves.toContain('write: may download gated models and publish');
    await expect(page.content()).resolves.not.toContain(TOKEN);

    // Publish: the form says what will be sent, and nothing is sent before the press.
    const before = hub.requests.length;
    await library().getByRole('button', { name: 'Publish to the Hub' }).first().click();
    const form = library().getByRole('form', { name: 'Publish to the Hugging Face Hub' });
    await form.getByText(`Pressing Publish sends these files to ${hub.url} as ada`).waitFor();
    expect(await form.getByLabel('Repository').inputValue()).toBe('ada/tickets');
    expect(await form.getByLabel(/Private/).isChecked()).toBe(true);
    const sent = await form.getByRole('group', { name: 'What will be sent' }).textContent();
    expect(sent).toMatch(/adapter_config\.json.*adapter_model\.safetensors.*README\.md \(the card above\)/s);
    expect(hub.requests.slice(before).filter((r) => r.method !== 'GET')).toEqual([]);
    const card = form.getByLabel(/Model card/);
    await card.fill(`${await card.inputValue()}\nWritten on the page.\n`);
    await library().screenshot({ path: path.join(SCREENSHOTS, 'hub-publish.png') });
    await form.getByRole('button', { name: 'Publish', exact: true }).click();
    await library().getByText(`Published: ${hub.url}/ada/tickets`).waitFor({ timeout: 60_000 });
    const repo = hub.api.pushed.get('ada/tickets')!;
    expect(repo.private).toBe(true);
    const original = unzipSync(zip);
    for (const file of ['adapter_config.json', 'adapter_model.safetensors'])
      expect(repo.files.get(file)!.equals(Buffer.from(original[file])), file).toBe(true);
    expect(repo.files.get('README.md')!.toString('utf8')).toMatch(
      /PeftModel\.from_pretrained\(base, "ada\/tickets"\)[\s\S]*Written on the page\.\n$/,
    );

    // Added back by id, it goes into the library with its source and into the chat.
    await library().getByLabel('Add from the Hub').fill('ada/tickets');
    await library().getByRole('button', { name: 'Add adapter' }).click();
    await library().getByText('Added tickets from the Hub (hf:ada/tickets); the chat now uses it.').waitFor({
      timeout: 60_000,
    });
    await library().getByText('from the Hub, ada/tickets').waitFor();
    const [, fromHub] = await ask('Once upon a time');
    expect(fromHub).toBe(imported);

    // The token went with exactly the requests that need it: whoami, the publish steps and the download.
    const withToken = hub.requests.filter((r) => r.raw.includes(TOKEN)).map((r) => `${r.method} ${r.path}`);
    expect(withToken.filter((r) => !r.startsWith('GET /ada/tickets/resolve/'))).toEqual([
      'GET /api/whoami-v2',
      'POST /api/repos/create',
      'POST /api/models/ada/tickets/preupload/main',
      'POST /ada/tickets.git/info/lfs/objects/batch',
      'POST /api/models/ada/tickets/commit/main',
    ]);
    expect(hub.requests.find((r) => r.method === 'PUT')!.authorization).toBeNull();

    // With the token, the gated model downloads like an open one.
    await page.getByText('Choose a model').click();
    await page.getByLabel('Model id').fill(GATED);
    await page.getByRole('button', { name: 'Load model', exact: true }).click();
    await page.getByText(`${GATED} · 260K parameters`).waitFor({ timeout: 60_000 });
    expect(
      hub.requests.filter((r) => r.path.startsWith(`/${GATED}/resolve/`) && r.status === 200).length,
    ).toBeGreaterThan(0);

    // A link, however it is written, loads the page and sends nothing with the token.
    const loaded = hub.requests.length;
    await page.goto(`${harness.baseUrl}/?hf_endpoint=${encodeURIComponent(hub.url)}&publish=ada/x&token=1`);
    await library()
      .getByRole('region', { name: 'Hugging Face account' })
      .getByText('Token hf_…4242')
      .waitFor();
    expect(hub.requests.slice(loaded).filter((r) => r.raw.includes(TOKEN) || r.method !== 'GET')).toEqual([]);

    // Forgotten in one click: the field is back and the browser keeps no token.
    await library()
      .getByRole('region', { name: 'Hugging Face account' })
      .getByRole('button', { name: 'Forget token' })
      .click();
    await library()
      .getByRole('region', { name: 'Hugging Face account' })
      .getByLabel('Access token')
      .waitFor();
    const kept = await page.evaluate(
      () =>
        new Promise<string>((resolve) => {
          const request = indexedDB.open('webtune-hub-token');
          request.onsuccess = () => {
            const all = request.result.transaction('token').objectStore('token').getAll();
            all.onsuccess = () => resolve(JSON.stringify(all.result));
          };
        }),
    );
    expect(kept).toBe('[]');
  });
});
