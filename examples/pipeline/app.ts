/**
 * A multi-model text analyzer: a preprocessor feeds a sentiment model and a summarizer, which run in
 * parallel; the ingress `Pipeline` combines their answers.
 *
 *   POST /analyze {"text": "..."}  ->  {original_length, sentiment: {label, score}, summary}
 *
 * Both ways of declaring a deployment appear here:
 * - function form, `deployment(Class, options)`: the class stays a plain class (easy to unit-test
 *   without the runtime) and the result is a `Deployment` value with a typed `.bind()` and
 *   `.options()` for variants. Used where the options are a deployment-time concern.
 * - decorator form, `@deployment(options) class X {}` then `bind(X, ...)`: the options sit on the
 *   class itself. Used for the ingress and the summarizer, whose options belong with their code.
 */
import { bind, type DeploymentHandle, deployment, type ServeRequest } from 'rayline';
import {
  ExtractiveSummarizer,
  type Preprocessed,
  preprocess,
  type Sentiment,
  SentimentAnalyzer,
} from './nlp.ts';

/** Normalises and tokenizes; cheap and stateless, so two replicas share the load. */
class Preprocessor {
  preprocess(text: string): Preprocessed {
    return preprocess(text);
  }
}
const PreprocessorDeployment = deployment(Preprocessor, { numReplicas: 2, rayActorOptions: { numCpus: 1 } });

class SentimentModel {
  readonly #analyzer = new SentimentAnalyzer(); // the model loads once per replica

  predict(text: string): Sentiment {
    return this.#analyzer.analyze(text);
  }
}
const SentimentDeployment = deployment(SentimentModel, { numReplicas: 1 });

@deployment({ numReplicas: 1, maxOngoingRequests: 16 })
class SummaryModel {
  #summarizer = new ExtractiveSummarizer();

  /** `user_config: {ratio}`: the share of sentences a summary keeps, changed without a restart. */
  reconfigure(config: { ratio?: number }): void {
    const ratio = config.ratio ?? 0.3;
    if (!(ratio > 0 && ratio <= 1)) throw new Error(`user_config.ratio must be in (0, 1], got ${ratio}`);
    this.#summarizer = new ExtractiveSummarizer(ratio);
  }

  summarize(text: string): string {
    return this.#summarizer.summarize(text);
  }
}

@deployment({ numReplicas: 1 })
class Pipeline {
  readonly #preprocessor: DeploymentHandle<Preprocessor>;
  readonly #sentiment: DeploymentHandle<SentimentModel>;
  readonly #summary: DeploymentHandle<SummaryModel>;

  constructor(
    preprocessor: DeploymentHandle<Preprocessor>,
    sentiment: DeploymentHandle<SentimentModel>,
    summary: DeploymentHandle<SummaryModel>,
  ) {
    this.#preprocessor = preprocessor;
    this.#sentiment = sentiment;
    this.#summary = summary;
  }

  async __call__(request: ServeRequest) {
    const { text } = request.json<{ text?: unknown }>() ?? {};
    if (typeof text !== 'string') {
      throw Object.assign(new Error('request body must be a JSON object with a string field "text"'), {
        statusCode: 400,
      });
    }
    const processed = await this.#preprocessor.preprocess.remote(text);
    // Both calls start before either is awaited, so the two models work at the same time. The
    // summary quotes sentences, so it gets the text as written rather than the normalised one.
    const sentiment = this.#sentiment.predict.remote(processed.text);
    const summary = this.#summary.summarize.remote(text);
    return { original_length: processed.length, sentiment: await sentiment, summary: await summary };
  }
}

export const app = bind(
  Pipeline,
  PreprocessorDeployment.bind(),
  SentimentDeployment.bind(),
  bind(SummaryModel),
);
