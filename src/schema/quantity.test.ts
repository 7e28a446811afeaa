import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatBytes, parseQuantity } from './quantity.ts';

test('parseQuantity reads decimal, binary and milli quantities', () => {
  assert.equal(parseQuantity('500m'), 0.5);
  assert.equal(parseQuantity('2'), 2);
  assert.equal(parseQuantity(3), 3);
  assert.equal(parseQuantity('16Gi'), 16 * 2 ** 30);
  assert.equal(parseQuantity('1G'), 1e9);
  assert.equal(parseQuantity('1.5Ki'), 1536);
  assert.equal(parseQuantity('1e3'), 1000);
  assert.equal(parseQuantity('lots'), undefined);
  assert.equal(parseQuantity('5 Gi'), undefined);
});

test('formatBytes uses the largest binary suffix that divides evenly', () => {
  assert.equal(formatBytes(48 * 2 ** 30), '48Gi');
  assert.equal(formatBytes(1536 * 2 ** 20), '1536Mi');
  assert.equal(formatBytes(1000), '1000');
});
