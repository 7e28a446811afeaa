import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RouteTable } from './route-table.ts';

const table = new RouteTable();
table.update([
  { routePrefix: '/', app: 'root', ingress: 'A' },
  { routePrefix: '/api', app: 'api', ingress: 'B' },
  { routePrefix: '/api/v2', app: 'v2', ingress: 'C' },
]);

test('longest prefix wins', () => {
  assert.equal(table.match('/api/v2/items')?.app, 'v2');
  assert.equal(table.match('/api/v2')?.app, 'v2');
  assert.equal(table.match('/api/v1')?.app, 'api');
  assert.equal(table.match('/api')?.app, 'api');
});

test('a prefix matches whole path segments only', () => {
  assert.equal(table.match('/apiary')?.app, 'root');
  assert.equal(table.match('/api/v20')?.app, 'api');
});

test('without a root route, unknown paths match nothing', () => {
  const t = new RouteTable();
  t.update([{ routePrefix: '/analyze', app: 'a', ingress: 'P' }]);
  assert.equal(t.match('/other'), undefined);
  assert.deepEqual(t.toJSON(), { '/analyze': 'a' });
});
