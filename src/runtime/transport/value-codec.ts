/**
 * Serializes call arguments and results with V8's structured serializer (Buffers, Maps, Dates,
 * typed arrays survive). Rayline's own request and response objects travel as tagged plain data and
 * are rebuilt on the other side.
 */
import v8 from 'node:v8';
import { ServeRequest, ServeResponse, type WireRequest } from '../../serve/request.ts';

const TAG = '__rayline_wire__';

function toWire(value: unknown): unknown {
  if (value instanceof ServeRequest) return { [TAG]: 'request', value: value.toWire() };
  if (value instanceof ServeResponse) {
    return { [TAG]: 'response', status: value.status, headers: value.headers, body: value.body };
  }
  return value;
}

function fromWire(value: unknown): unknown {
  if (value === null || typeof value !== 'object' || !(TAG in value)) return value;
  const tagged = value as Record<string, unknown>;
  if (tagged[TAG] === 'request') return new ServeRequest(tagged.value as WireRequest);
  if (tagged[TAG] === 'response') {
    return new ServeResponse(tagged.body, {
      status: tagged.status as number,
      headers: tagged.headers as Record<string, string>,
    });
  }
  return value;
}

export function encodeValue(value: unknown): Buffer {
  return v8.serialize(toWire(value));
}

export function decodeValue(bytes: Uint8Array): unknown {
  return fromWire(v8.deserialize(bytes));
}

export function encodeArgs(args: readonly unknown[]): Buffer {
  return v8.serialize(args.map(toWire));
}

export function decodeArgs(bytes: Uint8Array): unknown[] {
  return (v8.deserialize(bytes) as unknown[]).map(fromWire);
}
