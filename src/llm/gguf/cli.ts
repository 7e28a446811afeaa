/**
 * Command line for the tiny model generator:
 *   node src/llm/gguf/cli.ts <out.gguf> [--seed N] [--embedding N] [--blocks N] [--heads N]
 *     [--heads-kv N] [--ff N] [--context N] [--f16]
 * Larger sizes make a heavier model for benchmarks (for example on a GPU) with the same tokenizer.
 */

import { parseArgs } from 'node:util';
import { writeTinyLlama } from './tiny-llama.ts';
import { writeTinyLora } from './tiny-lora.ts';

const USAGE =
  'usage: cli.ts <out.gguf> [--seed N] [--embedding N] [--blocks N] [--heads N] [--heads-kv N] [--ff N] [--context N] [--f16]\n       cli.ts <adapter.gguf> --lora CHAR [--embedding N]   (a LoRA adapter that makes the model write CHAR)';

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      seed: { type: 'string' },
      embedding: { type: 'string' },
      blocks: { type: 'string' },
      heads: { type: 'string' },
      'heads-kv': { type: 'string' },
      ff: { type: 'string' },
      context: { type: 'string' },
      f16: { type: 'boolean' },
      lora: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help || positionals.length !== 1) {
    console.error(USAGE);
    return values.help ? 0 : 2;
  }
  const int = (v: string | undefined, flag: string): number | undefined => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n)) throw new Error(`--${flag} must be an integer, got ${v}`);
    return n;
  };
  if (values.lora !== undefined) {
    if (values.lora.length !== 1 || values.lora.charCodeAt(0) > 127)
      throw new Error('--lora takes one ASCII character');
    const lora = await writeTinyLora(positionals[0], {
      byte: values.lora.charCodeAt(0),
      embeddingLength: int(values.embedding, 'embedding'),
    });
    console.log(`wrote ${lora.path}: ${lora.bytes} bytes, a LoRA adapter writing '${values.lora}'`);
    return 0;
  }
  const started = performance.now();
  const info = await writeTinyLlama(positionals[0], {
    seed: int(values.seed, 'seed'),
    embeddingLength: int(values.embedding, 'embedding'),
    blockCount: int(values.blocks, 'blocks'),
    headCount: int(values.heads, 'heads'),
    headCountKv: int(values['heads-kv'], 'heads-kv'),
    feedForwardLength: int(values.ff, 'ff'),
    contextLength: int(values.context, 'context'),
    tensorType: values.f16 ? 'f16' : undefined,
  });
  const ms = (performance.now() - started).toFixed(0);
  console.log(
    `wrote ${info.path}: ${info.bytes} bytes, vocab ${info.vocabSize}, seed ${info.options.seed}, ${ms} ms`,
  );
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exitCode = 1;
  },
);
