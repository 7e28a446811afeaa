/**
 * What a head keeps on disk when given a state directory (`--state-dir`, e.g. a volume in its pod):
 * the applied serve config and the worker nodes it knew. A restarted head re-applies the config and
 * waits for those nodes to report the replicas they run, so that it adopts them instead of starting
 * new ones.
 */
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../observability/logger.ts';
import { parseServeConfig, type ServeConfig } from '../schema/serve-config.ts';

export class HeadState {
  readonly #dir: string;
  readonly #log: Logger;
  #lastNodes = '';

  constructor(dir: string, log: Logger) {
    this.#dir = dir;
    this.#log = log;
    mkdirSync(dir, { recursive: true });
  }

  load(): { config: ServeConfig | undefined; nodeIds: string[] } {
    const config = this.#read('serve-config.json');
    const nodes = this.#read('nodes.json');
    const result = config === undefined ? undefined : parseServeConfig(config);
    if (result && !result.ok) {
      this.#log.error({ issues: result.issues }, 'the saved serve config is invalid; starting without it');
    }
    const parsed = result?.ok ? result.value : undefined;
    return {
      config: parsed,
      nodeIds: Array.isArray(nodes) ? nodes.filter((n) => typeof n === 'string') : [],
    };
  }

  saveConfig(config: ServeConfig | undefined): void {
    if (config === undefined) rmSync(join(this.#dir, 'serve-config.json'), { force: true });
    else this.#write('serve-config.json', config);
  }

  saveNodes(nodeIds: string[]): void {
    const text = JSON.stringify([...nodeIds].sort());
    if (text === this.#lastNodes) return;
    this.#lastNodes = text;
    this.#write('nodes.json', JSON.parse(text));
  }

  #read(name: string): unknown {
    try {
      return JSON.parse(readFileSync(join(this.#dir, name), 'utf8'));
    } catch {
      return undefined;
    }
  }

  /** Write then rename, so a head killed mid-write leaves the previous file whole. */
  #write(name: string, value: unknown): void {
    const path = join(this.#dir, name);
    writeFileSync(`${path}.tmp`, JSON.stringify(value));
    renameSync(`${path}.tmp`, path);
  }
}
