// wink-naive-bayes-text-classifier ships no typings: the part of its API this example uses.
declare module 'wink-naive-bayes-text-classifier' {
  interface NaiveBayesTextClassifier {
    /** Functions applied in turn to each input text; the last must return its tokens. */
    definePrepTasks(tasks: ((input: string) => string[])[]): number;
    defineConfig(config: { considerOnlyPresence?: boolean; smoothingFactor?: number }): boolean;
    learn(input: string | string[], label: string): boolean;
    /** Must be called after the last learn() and before predict(). */
    consolidate(): boolean;
    /** The most likely label, or 'unknown' when no token of the input was ever seen. */
    predict(input: string | string[]): string;
    /** `[label, odds]` pairs, most likely first. */
    computeOdds(input: string | string[]): [string, number][];
  }
  function naiveBayesTextClassifier(): NaiveBayesTextClassifier;
  export = naiveBayesTextClassifier;
}
