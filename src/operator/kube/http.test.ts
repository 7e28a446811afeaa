import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isAlreadyExists, isConflict, isGone, isNotFound, KubeApiError } from './api-error.ts';
import { query, resourcePath, responseError } from './http.ts';
import { ConfigMaps, Leases, Namespaces, Pods, RayClusters, RoleBindings, splitKey } from './resources.ts';

test('resource paths for the core group, named groups, cluster scope and subresources', () => {
  assert.equal(resourcePath(Pods, 'ns'), '/api/v1/namespaces/ns/pods');
  assert.equal(resourcePath(Pods), '/api/v1/pods', 'no namespace: all namespaces');
  assert.equal(resourcePath(Pods, 'ns', 'p', 'status'), '/api/v1/namespaces/ns/pods/p/status');
  assert.equal(resourcePath(RayClusters, 'ns', 'rc'), '/apis/rayline.dev/v1/namespaces/ns/rayclusters/rc');
  assert.equal(
    resourcePath(Leases, 'kube-system', 'l'),
    '/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/l',
  );
  assert.equal(
    resourcePath(RoleBindings, 'ns'),
    '/apis/rbac.authorization.k8s.io/v1/namespaces/ns/rolebindings',
  );
  assert.equal(resourcePath(Namespaces, undefined, 'x'), '/api/v1/namespaces/x');
  assert.equal(resourcePath(ConfigMaps, 'ns', 'a b'), '/api/v1/namespaces/ns/configmaps/a%20b');
  assert.throws(() => resourcePath(Pods, undefined, 'p'), /needs a namespace/);
});

test('query strings skip unset values', () => {
  assert.equal(query({ a: 'x', b: undefined, c: '', d: 3, e: true }), '?a=x&d=3&e=true');
  assert.equal(query({ a: undefined }), '');
});

test('responseError reads the Status object, or falls back on the code', () => {
  const status = JSON.stringify({
    kind: 'Status',
    code: 410,
    reason: 'Expired',
    message: 'too old resource version: 1 (5)',
  });
  const gone = responseError('GET', '/api/v1/pods', 410, status);
  assert.equal(gone.statusCode, 410);
  assert.equal(gone.reason, 'Expired');
  assert.equal(gone.message, 'GET /api/v1/pods: 410 Expired: too old resource version: 1 (5)');
  assert.equal(gone.status?.code, 410);
  assert.ok(isGone(gone));

  const html = responseError('GET', '/x', 503, '<html>bad gateway</html>');
  assert.equal(html.reason, 'ServiceUnavailable');
  assert.match(html.message, /<html>bad gateway/);
  assert.equal(responseError('GET', '/x', 418, '').reason, 'Unknown');
});

test('classifiers', () => {
  const e = (code: number, reason: string) => new KubeApiError('GET', '/x', code, reason, 'm');
  assert.ok(isNotFound(e(404, 'NotFound')));
  assert.ok(isConflict(e(409, 'Conflict')));
  assert.ok(!isConflict(e(409, 'AlreadyExists')));
  assert.ok(isAlreadyExists(e(409, 'AlreadyExists')));
  assert.ok(isGone(e(410, 'Gone')) && isGone(e(500, 'Expired')));
  assert.ok(!isGone(e(404, 'NotFound')) && !isNotFound(new Error('404')));
  assert.equal(new KubeApiError('GET', '/x', 0, 'ConnectionFailed', 'refused').message, 'GET /x: refused');
});

test('splitKey undoes objectKey', () => {
  assert.deepEqual(splitKey('ns/name'), { namespace: 'ns', name: 'name' });
  assert.deepEqual(splitKey('cluster-scoped'), { namespace: undefined, name: 'cluster-scoped' });
});
