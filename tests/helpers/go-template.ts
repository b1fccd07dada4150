/** Go's text/template, the engine Ollama renders a Modelfile's TEMPLATE with (Debian's golang-go). */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const INSTALL_GO = 'apt-get install -y golang-go';

export interface TemplateData {
  messages?: { role: string; content: string }[];
  system?: string;
  prompt?: string;
}

let binary: string | undefined;

/** Builds the renderer once per process. */
function renderer(): string {
  if (binary) return binary;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'webtune-go-'));
  const out = path.join(dir, 'render');
  try {
    execFileSync('go', ['build', '-o', out, path.join(__dirname, 'go-template', 'main.go')], {
      env: { ...process.env, GOCACHE: path.join(dir, 'cache'), GOFLAGS: '-mod=mod', GO111MODULE: 'off' },
      stdio: 'pipe',
    });
  } catch (error) {
    throw new Error(
      `Could not build the Go template renderer (${(error as Error).message}). Install Go: ${INSTALL_GO}`,
      { cause: error },
    );
  }
  return (binary = out);
}

/** Renders `template` once per data item, as Ollama's Go templates render. */
export function renderGoTemplate(template: string, data: TemplateData[]): string[] {
  return JSON.parse(
    execFileSync(renderer(), { input: JSON.stringify({ template, data }), encoding: 'utf8' }),
  ) as string[];
}
