/** Baseline for the pipeline benchmark: the same NLP code in one bare node:http process. */
import { createServer } from 'node:http';
import { ExtractiveSummarizer, preprocess, SentimentAnalyzer } from '../examples/pipeline/nlp.ts';

const sentiment = new SentimentAnalyzer();
const summarizer = new ExtractiveSummarizer();

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const { text } = JSON.parse(Buffer.concat(chunks).toString()) as { text: string };
    const processed = preprocess(text);
    const body = JSON.stringify({
      original_length: processed.length,
      sentiment: sentiment.analyze(processed.text),
      summary: summarizer.summarize(text),
    });
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
    res.end(body);
  });
});
server.keepAliveTimeout = 90_000;
server.listen(Number(process.argv[2] ?? 0), '127.0.0.1', () => process.send?.('ready'));
