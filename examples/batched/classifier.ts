/**
 * A small topic classifier: multinomial naive Bayes over wink-nlp stems, trained at construction on a
 * handful of embedded examples. No Rayline here; the deployment wraps it.
 */
import model from 'wink-eng-lite-web-model';
import naiveBayes from 'wink-naive-bayes-text-classifier';
import winkNLP, { type ItemToken, type ItsFunction } from 'wink-nlp';

export type Topic = 'finance' | 'sports' | 'tech';

const TRAINING: Record<Topic, string[]> = {
  finance: [
    'The central bank raised interest rates to fight inflation',
    'Stocks fell sharply as investors sold shares after weak earnings',
    'The company reported quarterly revenue and profit above analyst forecasts',
    'Bond yields climbed while the dollar weakened against the euro',
    'She refinanced her mortgage to get a lower monthly loan payment',
    'The fund manager rebalanced the portfolio toward dividend stocks',
  ],
  sports: [
    'The striker scored twice in the second half to win the match',
    'The team clinched the championship after a dramatic overtime victory',
    'The coach praised the defense after the season opener',
    'She won the tennis final in straight sets at the open',
    'The quarterback threw three touchdowns in the playoff game',
    'Fans cheered as the runner broke the marathon world record',
  ],
  tech: [
    'The new smartphone ships with a faster chip and a better camera',
    'Developers released an update to the open source database software',
    'The startup trained a machine learning model on cloud GPUs',
    'A security flaw in the browser let attackers run malicious code',
    'The laptop has more memory, a brighter screen and longer battery life',
    'Engineers deployed the web service to a Kubernetes cluster',
  ],
};

export class TopicClassifier {
  readonly #model = naiveBayes();

  constructor() {
    const nlp = winkNLP(model);
    const { its } = nlp;
    // wink's typings declare its.stem with parameters that match no ItsFunction; it works with out().
    const stem = its.stem as unknown as ItsFunction<string>;
    const prepare = (text: string): string[] => {
      const tokens: string[] = [];
      nlp
        .readDoc(text)
        .tokens()
        .filter((t) => t.out(its.type) === 'word' && !t.out(its.stopWordFlag))
        .each((t: ItemToken) => {
          tokens.push(t.out(stem));
        });
      return tokens;
    };
    this.#model.definePrepTasks([prepare]);
    this.#model.defineConfig({ considerOnlyPresence: true, smoothingFactor: 0.5 });
    for (const [topic, examples] of Object.entries(TRAINING)) {
      for (const example of examples) this.#model.learn(example, topic);
    }
    this.#model.consolidate();
  }

  /** A topic, or 'unknown' when the text shares no word with the training data. */
  classify(text: string): Topic | 'unknown' {
    return this.#model.predict(text) as Topic | 'unknown';
  }
}
