/**
 * The OpenAI-compatible LLM application: `config.yaml` lists the models (`llm_configs`) and this
 * module hands them to Rayline's builder, which makes one LLMServer deployment per model behind an
 * OpenAI ingress routing by `model`. Any OpenAI client works against it unchanged.
 */
export { buildOpenAIApp as build } from 'rayline/llm';
