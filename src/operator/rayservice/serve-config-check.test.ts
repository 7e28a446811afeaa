import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkServeConfigV2, describeProblems } from './serve-config-check.ts';

test('a valid serveConfigV2 parses into the runtime config with defaults', () => {
  const check = checkServeConfigV2('applications:\n  - name: app\n    import_path: app.ts:app\n');
  assert.ok(check.ok);
  assert.equal(check.config.applications[0]?.route_prefix, '/');
});

test('schema errors name the field path and its line', () => {
  const text = [
    'applications:',
    '  - name: app',
    '    import_path: app.ts:app',
    '    deployments:',
    '      - name: Model',
    '        num_replicas: -2',
  ].join('\n');
  const check = checkServeConfigV2(text);
  assert.equal(check.ok, false);
  assert.ok(!check.ok);
  assert.equal(check.problems.length, 1);
  assert.equal(check.problems[0]?.path, 'applications[0].deployments[0].num_replicas');
  assert.equal(check.problems[0]?.line, 6);
  assert.match(
    describeProblems(check.problems),
    /^serveConfigV2 line 6: applications\[0\]\.deployments\[0\]\.num_replicas: /,
  );
});

test('an unknown field points at the object that holds it; broken YAML gives its line', () => {
  const unknown = checkServeConfigV2(
    'applications:\n  - name: app\n    import_path: a.ts:app\n    runtime_env:\n      pip: [torch]\n',
  );
  assert.ok(!unknown.ok);
  assert.deepEqual(
    unknown.problems.map((p) => [p.path, p.line]),
    [['applications[0].runtime_env.pip', 5]],
  );
  const broken = checkServeConfigV2('applications:\n  - name: app\n   import_path: [oops\n');
  assert.ok(!broken.ok);
  assert.equal(broken.problems[0]?.path, '(yaml)');
  assert.ok((broken.problems[0]?.line ?? 0) >= 2);
  assert.ok(!checkServeConfigV2('').ok);
});
