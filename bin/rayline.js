#!/usr/bin/env node
// The `rayline` command: the compiled package when installed, the TypeScript sources in its own
// repository (run by Node 24's type stripping, which Node refuses under node_modules).
import { existsSync } from 'node:fs';

const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  console.error(
    `rayline: needs Node.js 24 or newer and this is ${process.version}: add it to the project (npm install --save-dev node@24; npx and npm scripts then run on it) or install Node.js 24 (docs/getting-started.md) [RL_NODE_TOO_OLD]`,
  );
  process.exit(1);
}
const sources = new URL('../src/cli/main.ts', import.meta.url);
await import(existsSync(sources) ? sources.href : new URL('../dist/cli/main.js', import.meta.url).href);
