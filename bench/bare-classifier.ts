/** Baseline for the batching benchmark: the same classifier, one text per call, in one bare process. */
import { createServer } from 'node:http';
import { TopicClassifier } from '../examples/batched/classifier.ts';

const classifier = new TopicClassifier();

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const { text } = JSON.parse(Buffer.concat(chunks).toString()) as { text: string };
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
    res.end(JSON.stringify({ label: classifier.classify(text), batch_size: 1 }));
  });
});
server.keepAliveTimeout = 90_000;
server.listen(Number(process.argv[2] ?? 0), '127.0.0.1', () => process.send?.('ready'));
