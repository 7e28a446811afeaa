import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mergePatch } from './merge-patch.ts';

test('equal objects need no patch, whatever their key order or undefined members', () => {
  assert.equal(mergePatch({ a: 1, b: { c: [1, 2] } }, { b: { c: [1, 2] }, a: 1, d: undefined }), undefined);
});

test('objects inside arrays compare by content, not key order (the server reorders them)', () => {
  const built = { conditions: [{ type: 'Ready', status: 'True', reason: 'R', lastTransitionTime: 't' }] };
  const stored = { conditions: [{ lastTransitionTime: 't', reason: 'R', status: 'True', type: 'Ready' }] };
  assert.equal(mergePatch(stored, built), undefined);
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
