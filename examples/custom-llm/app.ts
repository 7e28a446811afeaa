/**
 * A custom LLM deployment, written against Rayline's engine directly instead of the OpenAI app:
 *
 *   POST /generate {"prompt": "...", "temperature": 0.7, "max_tokens": 32}  ->  {text, tokens}
 *
 * `tokens` is the number of tokens generated. The model is the generated tiny llama unless the
 * builder's `model_source` names a GGUF file.
 */
import { bind, deployment, type ServeRequest } from 'rayline';
import { LlamaCppEngine, modelPath, parseModelSource } from 'rayline/llm';

@deployment({ maxOngoingRequests: 16 })
class CustomLLM {
  readonly #engine: Promise<LlamaCppEngine>;

  constructor(modelSource: string) {
    // Parsed now so a missing file fails the replica's start; loaded in the background.
    const source = parseModelSource(modelSource);
    this.#engine = modelPath(source).then((path) => LlamaCppEngine.load({ modelPath: path, parallel: 4 }));
    this.#engine.catch(() => {});
  }

  async __call__(request: ServeRequest) {
    const body = request.json<{ prompt?: unknown; temperature?: unknown; max_tokens?: unknown }>() ?? {};
    const { prompt, temperature = 0.7, max_tokens = 32 } = body;
    if (typeof prompt !== 'string') throw badRequest('"prompt" must be a string');
    if (typeof temperature !== 'number' || temperature < 0)
      throw badRequest('"temperature" must be a number >= 0');
    if (!Number.isInteger(max_tokens) || (max_tokens as number) < 1)
      throw badRequest('"max_tokens" must be a positive integer');
    const engine = await this.#engine;
    const generation = engine.generate({
      prompt,
      sampling: { temperature, topP: 1, maxTokens: max_tokens as number, stop: [] },
      signal: request.signal,
    });
    let text = '';
    for await (const delta of generation) text += delta.text;
    const { usage } = await generation.final;
    return { text, tokens: usage.completionTokens };
  }
}

function badRequest(message: string): Error {
  return Object.assign(new Error(message), { statusCode: 400 });
}

export function build(args: { model_source?: string }) {
  return bind(CustomLLM, args.model_source ?? 'tiny:seed=1');
}
