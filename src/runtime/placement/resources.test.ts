/** Resource arithmetic and wording. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { addInto, fitsIn, formatResources, invalidRequest } from './resources.ts';

test('formats CPU, GPU, memory first, then custom names, without zeros', () => {
  assert.deepEqual(
    formatResources({ zz: 1, memory: 1.5 * 2 ** 30, GPU: 0.25, CPU: 2, TPU: 0 }),
    '{CPU: 2, GPU: 0.25, memory: 1.5GiB, zz: 1}',
  );
  assert.equal(formatResources({ memory: 512 * 2 ** 20 }), '{memory: 512MiB}');
  assert.equal(formatResources({}), '{}');
});

test('adding and removing 0.1 + 0.2 leaves nothing behind', () => {
  const used = {};
  addInto(used, { CPU: 0.1 });
  addInto(used, { CPU: 0.2 });
  assert.equal(fitsIn({ CPU: 0.3 }, used), true);
  addInto(used, { CPU: 0.2 }, -1);
  addInto(used, { CPU: 0.1 }, -1);
  assert.deepEqual(used, {});
});

test('whole GPUs above one, any fraction up to one', () => {
  assert.equal(invalidRequest('r', { GPU: 0.3 }), undefined);
  assert.equal(invalidRequest('r', { GPU: 2 }), undefined);
  assert.match(invalidRequest('r', { GPU: 2.5 }) ?? '', /^replica r asks for 2.5 GPUs/);
  assert.match(invalidRequest('r', { CPU: Number.NaN }) ?? '', /^replica r asks for CPU: NaN/);
});
