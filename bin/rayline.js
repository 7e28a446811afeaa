#!/usr/bin/env node
// The `rayline` command. Rayline's sources are TypeScript run by Node's own type stripping (Node 24).
const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  console.error(
    `rayline: needs Node.js 24 or newer, this is ${process.version}; run it through npm (npx rayline, npm start) to use the project's Node 24`,
  );
  process.exit(1);
}
await import('../src/cli/main.ts');
