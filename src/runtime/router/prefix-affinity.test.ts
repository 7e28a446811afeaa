import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  BLOCK_CHARS,
  PROMPT_BODY_LIMIT,
  PrefixAffinity,
  promptOf,
  promptOfArgs,
  promptOfBody,
} from './prefix-affinity.ts';

/** A deterministic text of `n` characters that differs from other seeds from its first character. */
function text(seed: string, n: number): string {
  let out = '';
  for (let i = 0; out.length < n; i++) out += `${seed}-${i} `;
  return out.slice(0, n);
}

const replicas = (...queues: number[]) =>
  queues.map((queueLength, i) => ({ replicaId: `r${i}`, queueLength }));

describe('prefix affinity', () => {
  test('a repeated long prefix goes to the replica that served it', () => {
    const policy = new PrefixAffinity();
    const system = text('system prompt', 400);
    const candidates = replicas(0, 0, 0);
    // Nothing recorded yet: affinity does not decide (power of two choices does).
    const first = policy.blocks(`${system} question 0`);
    assert.equal(policy.choose(first, candidates), undefined);
    policy.record('r1', first);
    for (let i = 1; i <= 5; i++) {
      const next = policy.blocks(`${system} question ${i}, a bit longer`);
      assert.equal(policy.choose(next, candidates)?.replicaId, 'r1');
    }
    // Even when r1 is somewhat busier, within the threshold.
    assert.equal(policy.choose(policy.blocks(`${system} again`), replicas(3, 8, 0))?.replicaId, 'r1');
  });

  test('the longest match wins; equal matches go to the shorter queue', () => {
    const policy = new PrefixAffinity();
    const shared = text('shared', 160);
    policy.record('r0', policy.blocks(`${shared}${text('zero', 320)}`));
    policy.record('r1', policy.blocks(`${shared}${text('one', 320)}`));
    // Both hold the shared part; only r1 holds the longer prefix.
    assert.equal(
      policy.choose(policy.blocks(`${shared}${text('one', 200)}`), replicas(0, 5))?.replicaId,
      'r1',
    );
    // Only the shared part matches: both equally, so the shorter queue.
    const other = policy.blocks(`${shared}${text('two', 200)}`);
    assert.equal(policy.choose(other, replicas(4, 1))?.replicaId, 'r1');
    assert.equal(policy.choose(other, replicas(1, 4))?.replicaId, 'r0');
  });

  test('a new prefix goes to the replica holding the least; a short match does not count', () => {
    const policy = new PrefixAffinity({ matchRateThreshold: 0.5 });
    policy.record('r0', policy.blocks(text('a', 800)));
    policy.record('r1', policy.blocks(text('b', 160)));
    // No match at all: r2 holds nothing, so it gets the new prefix.
    assert.equal(policy.choose(policy.blocks(text('c', 400)), replicas(0, 0, 0))?.replicaId, 'r2');
    // 160 of 800 characters match on r1 (20%, below 50%): the smallest holder instead, r1 itself
    // among r0 and r1; with r2 present, r2.
    const partial = policy.blocks(`${text('b', 160)}${text('d', 640)}`);
    assert.equal(policy.choose(partial, replicas(0, 0, 0))?.replicaId, 'r2');
    assert.equal(policy.choose(partial, replicas(0, 0))?.replicaId, 'r1');
    // Prompts shorter than a block never match.
    assert.equal(policy.blocks('short').keys.length, 0);
  });

  test('imbalanced queues fall back to power of two choices', () => {
    const policy = new PrefixAffinity({ imbalancedThreshold: 10 });
    const prompt = policy.blocks(text('long', 500));
    policy.record('r0', prompt);
    assert.equal(policy.choose(prompt, replicas(10, 0))?.replicaId, 'r0');
    assert.equal(policy.choose(prompt, replicas(11, 0)), undefined);
    assert.equal(policy.choose(prompt, replicas(12, 1, 5)), undefined);
    policy.imbalancedThreshold = 2;
    assert.equal(policy.choose(prompt, replicas(3, 0)), undefined);
    assert.equal(policy.choose(prompt, replicas(2, 0))?.replicaId, 'r0');
  });

  test('memory per replica stays within its bound, oldest prefixes evicted first', () => {
    const policy = new PrefixAffinity({ maxBlocksPerReplica: 100 });
    const old = policy.blocks(text('old', 50 * BLOCK_CHARS));
    policy.record('r0', old);
    assert.equal(policy.heldBlocks('r0'), 50);
    for (let i = 0; i < 20; i++) {
      policy.record('r0', policy.blocks(text(`new ${i}`, 30 * BLOCK_CHARS)));
      assert.ok(policy.heldBlocks('r0') <= 100, `${policy.heldBlocks('r0')} blocks held`);
    }
    assert.equal(policy.heldBlocks('r0'), 100);
    // The old prompt was evicted: r1, holding less, wins it now; a recent one still goes to r0.
    policy.record('r1', policy.blocks(text('r1 only', 5 * BLOCK_CHARS)));
    assert.equal(policy.choose(old, replicas(0, 0))?.replicaId, 'r1');
    const recent = policy.blocks(text('new 19', 30 * BLOCK_CHARS));
    assert.equal(policy.choose(recent, replicas(0, 0))?.replicaId, 'r0');
    // A prompt longer than the bound is remembered by its first blocks only.
    policy.record('r2', policy.blocks(text('huge', 1000 * BLOCK_CHARS)));
    assert.equal(policy.heldBlocks('r2'), 100);
  });

  test('replicas that leave the table are forgotten', () => {
    const policy = new PrefixAffinity();
    const prompt = policy.blocks(text('kept', 400));
    policy.record('r0', prompt);
    policy.record('r1', policy.blocks(text('gone', 400)));
    assert.equal(policy.replicaCount, 2);
    policy.retain(new Set(['r1', 'r2']));
    assert.equal(policy.replicaCount, 1);
    assert.equal(policy.heldBlocks('r0'), 0);
    // A replica with the same id coming back starts empty: the prompt goes to the least holder.
    assert.equal(policy.choose(prompt, replicas(0, 0))?.replicaId, 'r0');
    policy.retain(new Set());
    assert.equal(policy.replicaCount, 0);
    assert.equal(policy.choose(prompt, replicas(0, 0)), undefined);
  });
});

describe('prompts of requests', () => {
  test('prompt strings and arrays, chat messages with string or structured content', () => {
    assert.equal(promptOf({ prompt: 'hello' }), 'hello');
    assert.equal(promptOf({ prompt: ['ab', 'cd'] }), 'abcd');
    assert.equal(
      promptOf({
        messages: [
          { role: 'system', content: 'be brief. ' },
          { role: 'user', content: [{ type: 'text', text: 'hi' }, { type: 'image_url' }] },
        ],
      }),
      'be brief. hi',
    );
    assert.equal(promptOf({ input: 'x' }), undefined);
    assert.equal(promptOf(42), undefined);
  });

  test('handle arguments: the first string, or the prompt of the first object', () => {
    assert.equal(promptOfArgs(['text', { prompt: 'other' }]), 'text');
    assert.equal(promptOfArgs([{ messages: [{ content: 'a' }, { content: 'b' }] }, 'later']), 'ab');
    assert.equal(promptOfArgs([1, { prompt: 'p' }]), 'p');
    assert.equal(promptOfArgs([]), undefined);
  });

  test('HTTP bodies: JSON objects only', () => {
    const body = (s: string) => new TextEncoder().encode(s);
    assert.equal(promptOfBody(body(' {"model": "m", "prompt": "héllo"}')), 'héllo');
    assert.equal(promptOfBody(body('{"messages": [{"role": "user", "content": "q"}]}')), 'q');
    assert.equal(promptOfBody(body('not json')), undefined);
    assert.equal(promptOfBody(body('{"prompt": ')), undefined);
    assert.equal(promptOfBody(body('"prompt"')), undefined);
    assert.equal(promptOfBody(new Uint8Array()), undefined);
    assert.equal(promptOfBody(body('{"model": "m", "input": ["prompt"]}')), undefined);
    const huge = `{"prompt": "${'x'.repeat(PROMPT_BODY_LIMIT)}"}`;
    assert.equal(promptOfBody(body(huge)), undefined);
    assert.equal(
      promptOfBody(body(huge.slice(0, PROMPT_BODY_LIMIT - 2) + '"}')),
      'x'.repeat(PROMPT_BODY_LIMIT - 14),
    );
  });
});
