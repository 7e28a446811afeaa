/**
 * LLM metrics, with vLLM's names (which LLM dashboards know) under Rayline's `rayline_llm_` prefix,
 * labelled by `model_id` (and, from the replica, `deployment`, `replica`, `application`). They are
 * user-level metrics (`metrics` from `rayline`), so the head's `/metrics` shows them next to
 * `ray_serve_*`. Tokens per second is the rate of the token counters, e.g.
 * `sum by (model_id) (rate(rayline_llm_generation_tokens_total[1m]))`, so it has no gauge of its own.
 */
import { metrics } from '../serve/metrics.ts';
import type { FinishReason, TextDelta, Usage } from './engine/types.ts';

/** vLLM's buckets, with finer ones below 10 ms for small models on fast hardware. */
const TTFT_BUCKETS_S = [
  0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80, 160, 640,
];
const ITL_BUCKETS_S = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5, 5, 7.5,
  10, 20, 40, 80,
];

function families() {
  return {
    ttft: metrics.histogram({
      name: 'rayline_llm_time_to_first_token_seconds',
      help: 'Time from the request reaching the model server to its first generated token, in seconds',
      labelNames: ['model_id'] as const,
      buckets: TTFT_BUCKETS_S,
    }),
    itl: metrics.histogram({
      name: 'rayline_llm_inter_token_latency_seconds',
      help: 'Time between consecutive generated tokens of a request, in seconds',
      labelNames: ['model_id'] as const,
      buckets: ITL_BUCKETS_S,
    }),
    promptTokens: metrics.counter({
      name: 'rayline_llm_prompt_tokens_total',
      help: 'Prompt tokens processed (generation and embedding inputs)',
      labelNames: ['model_id'] as const,
    }),
    generationTokens: metrics.counter({
      name: 'rayline_llm_generation_tokens_total',
      help: 'Tokens generated; its rate is the tokens per second',
      labelNames: ['model_id'] as const,
    }),
    success: metrics.counter({
      name: 'rayline_llm_request_success_total',
      help: 'Requests that finished, by finish reason (stop, length, abort when the caller left)',
      labelNames: ['model_id', 'finished_reason'] as const,
    }),
  };
}

let created: ReturnType<typeof families> | undefined;
const llm = () => (created ??= families());

/** Times one generation: wrap its deltas with `tokens`, then call `finish` with its outcome. */
export class GenerationMetrics {
  readonly #modelId: string;
  readonly #started = performance.now();

  constructor(modelId: string) {
    this.#modelId = modelId;
  }

  /**
   * The engine's deltas as they are, timed: the first token observes the time to first token; a
   * later delta of n tokens observes n inter-token latencies of its gap divided by n.
   */
  async *tokens(source: AsyncIterable<TextDelta>): AsyncGenerator<TextDelta> {
    const { ttft, itl } = llm();
    const labels = { model_id: this.#modelId };
    let last: number | undefined;
    for await (const delta of source) {
      if (delta.tokenCount > 0) {
        const now = performance.now();
        if (last === undefined) ttft.observe(labels, (now - this.#started) / 1000);
        else
          for (let i = 0; i < delta.tokenCount; i++)
            itl.observe(labels, (now - last) / 1000 / delta.tokenCount);
        last = now;
      }
      yield delta;
    }
  }

  /** Counts a finished generation's tokens; `reason` is `abort` when the caller left before the end. */
  finish(usage: Usage, reason: FinishReason | 'abort'): void {
    const { promptTokens, generationTokens, success } = llm();
    promptTokens.inc({ model_id: this.#modelId }, usage.promptTokens);
    generationTokens.inc({ model_id: this.#modelId }, usage.completionTokens);
    success.inc({ model_id: this.#modelId, finished_reason: reason });
  }
}

/** Counts an embedding request: its input tokens, and one success. */
export function recordEmbedding(modelId: string, promptTokens: number): void {
  const m = llm();
  m.promptTokens.inc({ model_id: modelId }, promptTokens);
  m.success.inc({ model_id: modelId, finished_reason: 'stop' });
}
