/**
 * A/B testing: `ABRouter` sends a share of the traffic (`trafficSplit`, 0.95 here) to the stable
 * model and the rest to the experimental one, passing the HTTP request on unchanged.
 *
 *   POST /ab {"text": "..."}  ->  {model: "stable" | "experimental", ...}
 *
 * The split can change without a restart: set `user_config: {traffic_split: 0.5}` on ABRouter in
 * config.yaml and `rayline serve deploy` it; each replica's `reconfigure()` receives the new value.
 */
import { bind, type DeploymentHandle, deployment, type ServeRequest } from 'rayline';

function readText(request: ServeRequest): string {
  const { text } = request.json<{ text?: unknown }>() ?? {};
  if (typeof text !== 'string') {
    throw Object.assign(new Error('request body must be a JSON object with a string field "text"'), {
      statusCode: 400,
    });
  }
  return text;
}

const words = (text: string) => text.toLowerCase().match(/[\p{L}\p{N}']+/gu) ?? [];

/** The model in production. */
@deployment({ numReplicas: 2 })
class StableModel {
  __call__(request: ServeRequest) {
    return { model: 'stable' as const, version: 'v1', words: words(readText(request)).length };
  }
}

/** The candidate: same answer plus a new field, on one replica while it proves itself. */
@deployment({ numReplicas: 1 })
class ExperimentalModel {
  __call__(request: ServeRequest) {
    const all = words(readText(request));
    return {
      model: 'experimental' as const,
      version: 'v2',
      words: all.length,
      unique_words: new Set(all).size,
    };
  }
}

export interface RouterConfig {
  /** Share of requests for the stable model, in [0, 1]. */
  traffic_split?: number;
}

function checkSplit(split: unknown): number {
  if (typeof split !== 'number' || !(split >= 0 && split <= 1)) {
    throw new Error(`traffic split must be a number in [0, 1], got ${JSON.stringify(split)}`);
  }
  return split;
}

@deployment({ numReplicas: 1 })
class ABRouter {
  readonly #modelA: DeploymentHandle<StableModel>;
  readonly #modelB: DeploymentHandle<ExperimentalModel>;
  #split: number;

  constructor(
    modelA: DeploymentHandle<StableModel>,
    modelB: DeploymentHandle<ExperimentalModel>,
    trafficSplit: number,
  ) {
    this.#modelA = modelA;
    this.#modelB = modelB;
    this.#split = checkSplit(trafficSplit);
  }

  /** Called with the deployment's user_config at start and whenever it changes. */
  reconfigure(config: RouterConfig): void {
    if (config.traffic_split !== undefined) this.#split = checkSplit(config.traffic_split);
  }

  async __call__(request: ServeRequest) {
    // The request object crosses to the chosen model as is: method, URL, headers and body.
    if (Math.random() < this.#split) return await this.#modelA.remote(request);
    return await this.#modelB.remote(request);
  }
}

export const app = bind(ABRouter, bind(StableModel), bind(ExperimentalModel), 0.95);
