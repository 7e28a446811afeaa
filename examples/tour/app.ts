/** The README's quick tour, kept compiling and running. */
import { batch, bind, type DeploymentHandle, deployment, type ServeRequest } from 'rayline';

class Preprocessor {
  preprocess(text: string): { text: string; length: number } {
    const cleaned = text.trim().toLowerCase();
    return { text: cleaned, length: cleaned.split(/\s+/).length };
  }
}
// Function form: returns a Deployment, fully typed.
const PreprocessorDeployment = deployment(Preprocessor, { numReplicas: 2, rayActorOptions: { numCpus: 1 } });

// Decorator form: records the options on the class; bind it with bind(Class, ...args).
@deployment({ maxOngoingRequests: 32 }) // a batch can only gather what the replica accepts
class Sentiment {
  // batch(): callers pass one text, the function receives up to 32 at once.
  predict = batch({ maxBatchSize: 32, batchWaitTimeoutS: 0.05 }, async (texts: string[]) =>
    texts.map((t) => ({ label: t.includes('good') ? 'POSITIVE' : 'NEGATIVE' })),
  );
}

@deployment()
class Pipeline {
  readonly #pre: DeploymentHandle<Preprocessor>;
  readonly #sentiment: DeploymentHandle<Sentiment>;

  constructor(pre: DeploymentHandle<Preprocessor>, sentiment: DeploymentHandle<Sentiment>) {
    this.#pre = pre;
    this.#sentiment = sentiment;
  }

  // The HTTP entry point of an ingress deployment: `__call__(request: ServeRequest)`.
  async __call__(request: ServeRequest) {
    const { text } = request.json<{ text: string }>();
    const processed = this.#pre.preprocess.remote(text); // starts now
    const label = this.#sentiment.predict.remote(text); // runs in parallel
    return { length: (await processed).length, sentiment: await label };
  }
}

export const app = bind(Pipeline, PreprocessorDeployment.bind(), bind(Sentiment));
