import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RouteTable, routingPath } from './route-table.ts';

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

test('routing paths are what the application sees, decoded: dot segments resolved, %2F kept', () => {
  assert.equal(routingPath('/api/v2/items'), '/api/v2/items');
  assert.equal(routingPath('/v1/file.txt'), '/v1/file.txt');
  assert.equal(routingPath('/hello/../api/x'), '/api/x');
  assert.equal(routingPath('/hello/%2e%2e/api/x'), '/api/x');
  assert.equal(routingPath('/caf%C3%A9/x'), '/café/x');
  assert.equal(routingPath('/a%2Fb/c'), '/a%2Fb/c');
  assert.equal(routingPath('/bad%zz'), '/bad%zz');
  assert.equal(table.match(routingPath('/apiary/../api/v2/x'))?.app, 'v2');
});
