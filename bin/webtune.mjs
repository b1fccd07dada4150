#!/usr/bin/env node
import { pathToFileURL } from 'node:url';
import { ensureBuilt } from './ensure-built.mjs';

const { main } = await import(pathToFileURL(await ensureBuilt('webtune')).href);
process.exitCode = await main(process.argv.slice(2));
