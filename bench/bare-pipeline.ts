/** Baseline for the pipeline benchmark: the same NLP code in one bare node:http process. */
import { ExtractiveSummarizer, preprocess, SentimentAnalyzer } from '../examples/pipeline/nlp.ts';
import { serveJson } from './bare-json-server.ts';

const sentiment = new SentimentAnalyzer();
const summarizer = new ExtractiveSummarizer();

serveJson(({ text }) => {
  const processed = preprocess(text);
  return {
    original_length: processed.length,
    sentiment: sentiment.analyze(processed.text),
    summary: summarizer.summarize(text),
  };
});
