/**
 * The official OpenAI Python client against the LLM app (llama.cpp on the tiny generated model):
 * structured outputs, tool calls, logprobs, n, streaming with usage, and a 400 naming a parameter
 * that is not honoured. The client is installed from PyPI into a virtual environment cached under
 * ~/.cache/rayline (RAYLINE_PYTHON_VENV overrides); without python3 or PyPI the test is skipped,
 * saying why.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startTestHead, type TestHead } from './harness.ts';

const run = promisify(execFile);
const venv = process.env.RAYLINE_PYTHON_VENV ?? join(homedir(), '.cache', 'rayline', 'python-openai');
const python = join(venv, 'bin', 'python');

/** The venv's python with `openai` installed, or why there is none. */
async function pythonClient(): Promise<{ python: string } | { skip: string }> {
  try {
    if (!existsSync(python)) {
      mkdirSync(join(venv, '..'), { recursive: true });
      await run('python3', ['-m', 'venv', venv]);
    }
    await run(python, ['-c', 'import openai']).catch(() =>
      run(join(venv, 'bin', 'pip'), ['install', '--quiet', 'openai'], { timeout: 180_000 }),
    );
    return { python };
  } catch (error) {
    return { skip: `no Python OpenAI client: ${(error as Error).message.split('\n')[0]}` };
  }
}

const SCRIPT = `
import json, sys
from openai import OpenAI, BadRequestError

client = OpenAI(base_url=sys.argv[1], api_key="x", max_retries=0)
out = {}
user = [{"role": "user", "content": "hi"}]
schema = {"type": "object", "properties": {"n": {"type": "integer"}, "ok": {"type": "boolean"}}, "required": ["n", "ok"], "additionalProperties": False}
r = client.chat.completions.create(model="tiny", messages=user, max_tokens=100, seed=1,
    response_format={"type": "json_schema", "json_schema": {"name": "r", "schema": schema, "strict": True}})
out["json"] = json.loads(r.choices[0].message.content)
out["json_finish"] = r.choices[0].finish_reason

tools = [{"type": "function", "function": {"name": "add", "parameters": {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}}}}]
r = client.chat.completions.create(model="tiny", messages=user, tools=tools, tool_choice="required", parallel_tool_calls=False, seed=2, max_tokens=100)
call = r.choices[0].message.tool_calls[0]
out["tool"] = {"name": call.function.name, "arguments": json.loads(call.function.arguments), "finish": r.choices[0].finish_reason}

r = client.chat.completions.create(model="tiny", messages=user, max_tokens=5, logprobs=True, top_logprobs=2, n=2, seed=3)
out["choices"] = len(r.choices)
out["logprobs"] = [len(c.logprobs.content) for c in r.choices]
out["top"] = [len(l.top_logprobs) for l in r.choices[0].logprobs.content]
out["usage"] = r.usage.completion_tokens

usage = None
text = ""
for chunk in client.chat.completions.create(model="tiny", messages=user, max_tokens=7, stream=True, stream_options={"include_usage": True}):
    if chunk.choices:
        text += chunk.choices[0].delta.content or ""
    if chunk.usage:
        usage = chunk.usage.completion_tokens
out["stream_usage"] = usage

try:
    client.chat.completions.create(model="tiny", messages=user, logit_bias={"65": 5})
except BadRequestError as e:
    out["refused"] = {"status": e.status_code, "param": e.body.get("param")}
print(json.dumps(out))
`;

let t: TestHead;
let client: Awaited<ReturnType<typeof pythonClient>>;

before(async () => {
  client = await pythonClient();
  if ('skip' in client) return;
  t = await startTestHead();
  await t.deploy({
    applications: [
      {
        name: 'llm-python',
        route_prefix: '/',
        import_path: 'app.ts:build',
        runtime_env: { working_dir: fileURLToPath(new URL('../examples/llm/', import.meta.url)) },
        args: {
          llm_configs: [
            {
              model_loading_config: { model_id: 'tiny', model_source: 'tiny:seed=1,context=8192' },
              engine_kwargs: { n_ctx: 8192, threads: 1, parallel: 2 },
            },
          ],
        },
      },
    ],
  });
  await t.waitForApp('llm-python', ['RUNNING'], 60_000);
});

after(async () => {
  await t?.stop();
});

test('the OpenAI Python client: structured output, a tool call, logprobs with n, a stream with usage, a refusal', async (ctx) => {
  if ('skip' in client) return ctx.skip(client.skip);
  const { stdout } = await run(client.python, ['-c', SCRIPT, `${t.http}/v1`], { timeout: 60_000 });
  const out = JSON.parse(stdout);
  assert.deepEqual(Object.keys(out.json).sort(), ['n', 'ok']);
  assert.ok(Number.isInteger(out.json.n) && typeof out.json.ok === 'boolean', JSON.stringify(out.json));
  assert.equal(out.json_finish, 'stop');
  assert.equal(out.tool.name, 'add');
  assert.equal(out.tool.finish, 'tool_calls');
  assert.deepEqual(Object.keys(out.tool.arguments).sort(), ['a', 'b']);
  assert.equal(out.choices, 2);
  assert.deepEqual(out.logprobs, [5, 5]);
  assert.deepEqual(out.top, [2, 2, 2, 2, 2]);
  assert.equal(out.usage, 10);
  assert.equal(out.stream_usage, 7);
  assert.deepEqual(out.refused, { status: 400, param: 'logit_bias' });
});
