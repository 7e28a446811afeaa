/**
 * Where a model's weights come from: a local GGUF path; `tiny:seed=N[,embedding=N,blocks=N,...]`,
 * the generated tiny llama model (written once to the temp folder, shared by replicas), so examples
 * and tests run without downloads; or a file to download at start-up into the model cache:
 * `https://host/path/model.gguf`, or `hf://owner/repo[@revision]/path/model.gguf` from the Hugging
 * Face hub (`$HF_ENDPOINT` instead of https://huggingface.co, `$HF_TOKEN` for gated repos). The cache
 * is `$RAYLINE_MODEL_CACHE`, else `~/.cache/rayline/models` (`$XDG_CACHE_HOME` honoured); a cached
 * file is used without asking the network again.
 */
import { createHash } from 'node:crypto';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
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
  | { kind: 'tiny'; options: TinyLlamaOptions; key: string }
  /** Downloaded from `url` to `path` in the cache on first use. */
  | { kind: 'remote'; source: string; url: string; path: string; token?: string };

/** The model cache folder. */
export function modelCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.RAYLINE_MODEL_CACHE) return resolve(env.RAYLINE_MODEL_CACHE);
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'rayline', 'models');
}

/** Whether a source is downloaded (so its replica waits for the download before it is ready). */
export function isRemoteSource(source: string): boolean {
  return /^(hf|https?):\/\//.test(source);
}

function parseRemote(source: string, env: NodeJS.ProcessEnv): ModelSource {
  const cache = modelCacheDir(env);
  if (source.startsWith('hf://')) {
    const match = /^hf:\/\/([^/@]+)\/([^/@]+)(?:@([^/]+))?\/(.+)$/.exec(source);
    const file = match?.[4];
    if (!match || !file || file.split('/').some((p) => p === '' || p === '.' || p === '..')) {
      throw new RaylineError(
        'RL_CONFIG_INVALID',
        `model_source '${source}' is not hf://owner/repo[@revision]/path/to/model.gguf`,
      );
    }
    const [, owner, repo, revision = 'main'] = match;
    const endpoint = (env.HF_ENDPOINT || 'https://huggingface.co').replace(/\/+$/, '');
    const quoted = (p: string) => p.split('/').map(encodeURIComponent).join('/');
    return {
      kind: 'remote',
      source,
      url: `${endpoint}/${quoted(`${owner}/${repo}`)}/resolve/${encodeURIComponent(revision)}/${quoted(file)}`,
      path: join(cache, 'huggingface', owner, repo, revision, ...file.split('/')),
      ...(env.HF_TOKEN ? { token: env.HF_TOKEN } : {}),
    };
  }
  let url: URL;
  try {
    url = new URL(source);
  } catch {
    throw new RaylineError('RL_CONFIG_INVALID', `model_source '${source}' is not a valid URL`);
  }
  const name = basename(url.pathname) || 'model.gguf';
  const digest = createHash('sha256').update(url.href).digest('hex').slice(0, 16);
  return { kind: 'remote', source, url: url.href, path: join(cache, 'url', digest, name) };
}

/** Parses and checks a source now, so a bad one fails the replica's start with its name. */
export function parseModelSource(source: string, cwd = process.cwd(), env = process.env): ModelSource {
  if (isRemoteSource(source)) return parseRemote(source, env);
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
      `model_source '${source}' not found (looked for ${path}); give a local GGUF file (for example a mounted volume), an https:// URL, hf://owner/repo/path/model.gguf or tiny:seed=N`,
    );
  }
  return { kind: 'file', path };
}

/** The GGUF path for a source, generating the tiny model or downloading the file first when needed. */
export async function modelPath(source: ModelSource): Promise<string> {
  if (source.kind === 'file') return source.path;
  if (source.kind === 'remote') return await download(source);
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

/**
 * Downloads a remote source into the cache, unless it is there. Written under a unique name and
 * renamed, so replicas downloading together never read half a file; a failure names the source,
 * the URL and the cause.
 */
async function download(source: Extract<ModelSource, { kind: 'remote' }>): Promise<string> {
  if (existsSync(source.path)) return source.path;
  await mkdir(join(source.path, '..'), { recursive: true });
  const partial = `${source.path}.${process.pid}.${Date.now()}.partial`;
  try {
    const response = await fetch(source.url, {
      headers: source.token ? { authorization: `Bearer ${source.token}` } : {},
    });
    if (!response.ok || !response.body) {
      await response.body?.cancel();
      throw new Error(`HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ''}`);
    }
    await pipeline(Readable.fromWeb(response.body), createWriteStream(partial));
    await rename(partial, source.path);
    return source.path;
  } catch (error) {
    await rm(partial, { force: true });
    const e = error as Error & { cause?: { message?: string; code?: string } };
    const cause = e.cause?.code ?? e.cause?.message;
    throw new RaylineError(
      'RL_UNAVAILABLE',
      `model_source '${source.source}': downloading ${source.url} failed: ${e.message}${cause ? ` (${cause})` : ''}; where the network cannot reach it, put the file on a volume and give its path`,
      { cause: error },
    );
  }
}
