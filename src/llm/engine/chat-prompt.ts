/**
 * Chat prompts for the llama.cpp engine: OpenAI's messages (tool calls and results included) as
 * node-llama-cpp's chat history, tools as its documented functions, and the plain fallback for
 * models without a usable chat template.
 */
import type {
  ChatHistoryItem,
  ChatModelFunctionCall,
  ChatModelFunctions,
  ChatModelResponse,
  GbnfJsonSchema,
} from 'node-llama-cpp';
import { RaylineError } from '../../errors.ts';
import type { ChatMessage, ToolDefinition } from './types.ts';

/** The fallback chat format for models without a usable template. */
export function plainChatPrompt(messages: readonly ChatMessage[], tools?: readonly ToolDefinition[]): string {
  const functions = tools?.length
    ? `functions (call one as ||call: name({...})):\n${tools.map((t) => `${t.name}(${JSON.stringify(t.parameters ?? {})})${t.description ? ` // ${t.description}` : ''}`).join('\n')}\n`
    : '';
  const line = (m: ChatMessage) =>
    m.toolCalls?.length
      ? `${m.role}: ${m.content}${m.toolCalls.map((c) => `||call: ${c.name}(${c.arguments})`).join('')}`
      : `${m.role}: ${m.content}`;
  return `${functions}${messages.map(line).join('\n')}\nassistant:`;
}

/** The tools as node-llama-cpp documents them in a prompt. */
export function functionsOf(tools: readonly ToolDefinition[]): ChatModelFunctions {
  return Object.fromEntries(
    tools.map((t) => [
      t.name,
      {
        ...(t.description ? { description: t.description } : {}),
        ...(t.parameters ? { params: t.parameters as GbnfJsonSchema } : {}),
      },
    ]),
  );
}

/**
 * OpenAI's messages as node-llama-cpp's chat history: an assistant's tool calls and the tool
 * messages that answer them become function calls with results inside the model's turn, as chat
 * templates render them.
 */
export function chatHistory(messages: readonly ChatMessage[]): ChatHistoryItem[] {
  const history: ChatHistoryItem[] = [];
  const calls = new Map<string, ChatModelFunctionCall>();
  let model: ChatModelResponse | undefined;
  for (const [i, m] of messages.entries()) {
    if (m.role === 'system' || m.role === 'user') {
      history.push({ type: m.role, text: m.content });
      model = undefined;
      continue;
    }
    if (m.role === 'tool') {
      const call = m.toolCallId === undefined ? undefined : calls.get(m.toolCallId);
      if (!call) {
        throw new RaylineError(
          'RL_BAD_REQUEST',
          `messages.${i}.tool_call_id: no earlier assistant message has a tool call with id '${m.toolCallId}'`,
        );
      }
      call.result = m.content;
      continue;
    }
    if (!model) {
      model = { type: 'model', response: [] };
      history.push(model);
    }
    if (m.content) model.response.push(m.content);
    for (const c of m.toolCalls ?? []) {
      let params: unknown = c.arguments;
      try {
        params = JSON.parse(c.arguments);
      } catch {
        // Not JSON: shown as the model wrote it.
      }
      const item: ChatModelFunctionCall = { type: 'functionCall', name: c.name, params, result: undefined };
      calls.set(c.id, item);
      model.response.push(item);
    }
  }
  return history;
}
