/**
 * Server-side batching: each HTTP request carries one text, but the replica classifies texts in
 * batches of up to 8, collected for at most 50 ms after the first one arrives.
 *
 *   POST /classify {"text": "..."}  ->  {label, batch_size}
 *
 * `batch_size` is the size of the batch the text was classified in, so batching can be observed:
 * send requests concurrently and it rises above 1.
 */
import { batch, bind, deployment, type ServeRequest } from 'rayline';
import { TopicClassifier } from './classifier.ts';

export interface Classification {
  label: string;
  batch_size: number;
}

// max_ongoing_requests (default 5) caps how many requests a replica holds at once, and so the size of
// any batch: it must be at least maxBatchSize for full batches to form.
@deployment({ numReplicas: 1, maxOngoingRequests: 32 })
class BatchedClassifier {
  readonly #model = new TopicClassifier();

  /**
   * The field form of batch(): `classify` stays typed as `(text: string) => Promise<Classification>`
   * on this class and on `DeploymentHandle<BatchedClassifier>`, and each replica gets its own queue.
   */
  classify = batch({ maxBatchSize: 8, batchWaitTimeoutS: 0.05 }, async (texts: string[]) =>
    texts.map((text): Classification => ({ label: this.#model.classify(text), batch_size: texts.length })),
  );

  async __call__(request: ServeRequest): Promise<Classification> {
    const { text } = request.json<{ text?: unknown }>() ?? {};
    if (typeof text !== 'string') {
      throw Object.assign(new Error('request body must be a JSON object with a string field "text"'), {
        statusCode: 400,
      });
    }
    return await this.classify(text);
  }
}

export const app = bind(BatchedClassifier);
