// wink-nlp ships typings for its utilities under extensionless names, but Node's ESM resolver needs
// the `.js` suffix (the package has no "exports" map). These shims give the `.js` paths the same types.
declare module 'wink-nlp/utilities/bm25-vectorizer.js' {
  export * from 'wink-nlp/utilities/bm25-vectorizer';
  export { default } from 'wink-nlp/utilities/bm25-vectorizer';
}

declare module 'wink-nlp/utilities/similarity.js' {
  export * from 'wink-nlp/utilities/similarity';
  export { default } from 'wink-nlp/utilities/similarity';
}
