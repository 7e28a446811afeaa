/**
 * Where a model's weights come from: a local GGUF path, or `tiny:seed=N[,embedding=N,blocks=N,...]`,
 * the generated tiny llama model (written once to the temp folder, shared by replicas), so
 * examples and tests run without downloads.
 */
import { existsSync } from 'node:fs';
import { mkdir, rename } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { RaylineError } from '../errors.ts';
import { type TinyLlamaOptions, writeTinyLlama } from './gguf/tiny-llama.ts';

const TINY_KEYS: Record<string, keyof TinyLlamaOptions> = {
  seed: 'seed',
  embedding: 'embeddingLength',
  blocks: 'blockCount',
  heads: 'headCount',
  ff: 'feedForwardLength',
  context: 'contextLength',
};

export type ModelSource =
  | { kind: 'file'; path: string }
  | { kind: 'tiny'; options: TinyLlamaOptions; key: string };

/** Parses and checks a source now, so a bad one fails the replica's start with its name. */
export function parseModelSource(source: string, cwd = process.cwd()): ModelSource {
  if (source.startsWith('tiny:')) {
    const options: Record<string, number> = {};
    for (const part of source.slice(5).split(',').filter(Boolean)) {
      const [k, v] = part.split('=');
      const key = TINY_KEYS[k ?? ''];
      const n = Number(v);
      if (!key || !Number.isInteger(n)) {
        throw new RaylineError(
          'RL_CONFIG_INVALID',
          `model_source '${source}': '${part}' is not one of ${Object.keys(TINY_KEYS).join(', ')} with an integer value`,
        );
      }
      options[key] = n;
    }
    const key = Object.entries(options)
      .map(([k, v]) => `${k}${v}`)
      .join('-');
    return { kind: 'tiny', options, key: key || 'default' };
  }
  const path = resolve(cwd, source);
  if (!existsSync(path)) {
    throw new RaylineError(
      'RL_CONFIG_INVALID',
      `model_source '${source}' not found (looked for ${path}); give a local GGUF file (for example a mounted volume) or tiny:seed=N`,
    );
  }
  return { kind: 'file', path };
}

/** The GGUF path for a source, generating the tiny model first when needed. */
export async function modelPath(source: ModelSource): Promise<string> {
  if (source.kind === 'file') return source.path;
  const dir = join(tmpdir(), 'rayline-llm');
  const path = join(dir, `tiny-${source.key}.gguf`);
  if (existsSync(path)) return path;
  await mkdir(dir, { recursive: true });
  // Written under a unique name and renamed: replicas starting together never read half a file.
  const partial = `${path}.${process.pid}.${Date.now()}.partial`;
  await writeTinyLlama(partial, source.options);
  await rename(partial, path);
  return path;
}
