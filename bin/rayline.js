#!/usr/bin/env node
// The `rayline` command: the compiled package when installed, the TypeScript sources in its own
// repository (run by Node 24's type stripping, which Node refuses under node_modules).
import { existsSync } from 'node:fs';

const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  console.error(
    `rayline: needs Node.js 24 or newer, this is ${process.version}; run it through npm (npx rayline, npm start) to use the project's Node 24`,
  );
  process.exit(1);
}
const sources = new URL('../src/cli/main.ts', import.meta.url);
await import(existsSync(sources) ? sources.href : new URL('../dist/cli/main.js', import.meta.url).href);
