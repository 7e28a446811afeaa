import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mergePatch } from './merge-patch.ts';

test('equal objects need no patch, whatever their key order or undefined members', () => {
  assert.equal(mergePatch({ a: 1, b: { c: [1, 2] } }, { b: { c: [1, 2] }, a: 1, d: undefined }), undefined);
});

test('removed keys become null, nested changes stay nested, arrays are replaced whole', () => {
  assert.deepEqual(
    mergePatch(
      {
        serviceStatus: 'Running',
        apps: { a: { status: 'RUNNING', message: 'x' }, gone: { status: 'RUNNING' } },
        list: [1, 2],
      },
      { apps: { a: { status: 'DEPLOYING' } }, list: [1], count: 0 },
    ),
    {
      serviceStatus: null,
      apps: { gone: null, a: { status: 'DEPLOYING', message: null } },
      list: [1],
      count: 0,
    },
  );
});
