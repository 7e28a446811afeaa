/** Baseline for the batching benchmark: the same classifier, one text per call, in one bare process. */
import { TopicClassifier } from '../examples/batched/classifier.ts';
import { serveJson } from './bare-json-server.ts';

const classifier = new TopicClassifier();

serveJson(({ text }) => ({ label: classifier.classify(text), batch_size: 1 }));
