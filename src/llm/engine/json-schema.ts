/**
 * The JSON Schema subset that generation can be held to (llama.cpp grammars built by
 * node-llama-cpp), and the translation of a client's schema into it. A keyword that would constrain
 * the output but that the grammar cannot enforce (`pattern`, `minimum`, `allOf`, ...) is refused,
 * naming its place in the schema, rather than produce JSON that does not match.
 *
 * The grammar may be stricter than the schema and still only produce matching JSON: it writes every
 * declared property (optional ones included) and no undeclared ones when `properties` are given.
 */
/** A schema keyword the grammar cannot enforce, at `path` (dot-separated, from the schema root). */
export class UnsupportedSchemaError extends Error {
  readonly path: string;

  constructor(path: string, message: string) {
    super(`${path}: ${message}`);
    this.path = path;
  }
}

/** Keywords that describe without constraining. */
const ANNOTATIONS = new Set([
  'title',
  'description',
  '$schema',
  '$id',
  '$comment',
  'examples',
  'default',
  'deprecated',
  'readOnly',
  'writeOnly',
]);

const TYPES = ['string', 'number', 'integer', 'boolean', 'null', 'object', 'array'] as const;
type TypeName = (typeof TYPES)[number];

/** The keywords each type supports, besides annotations, `type`, `enum` and `const`. */
const KEYWORDS: Record<TypeName, readonly string[]> = {
  string: ['minLength', 'maxLength', 'format'],
  number: [],
  integer: [],
  boolean: [],
  null: [],
  object: ['properties', 'required', 'additionalProperties', 'minProperties', 'maxProperties'],
  array: ['items', 'prefixItems', 'minItems', 'maxItems'],
};
const TYPED_KEYWORDS = new Set(Object.values(KEYWORDS).flat());
const STRING_FORMATS = new Set(['date', 'time', 'date-time']);

type Out = Record<string, unknown>;

const isObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v);

/** Any JSON value, in the subset's terms (an empty schema means anything). */
const ANY_VALUE: Out = {
  oneOf: [
    { type: ['string', 'number', 'boolean', 'null'] },
    { type: 'object', additionalProperties: true },
    { type: 'array' },
  ],
};

/** `{type: 'json_object'}`: any JSON object. */
export const ANY_OBJECT: Out = { type: 'object', additionalProperties: true };

/**
 * The schema in the subset node-llama-cpp turns into a grammar; throws `UnsupportedSchemaError` at
 * the first keyword it cannot enforce. `path` names the schema's place in the request.
 */
export function toGrammarSchema(schema: unknown, path = 'schema'): Out {
  if (!isObject(schema)) throw new UnsupportedSchemaError(path, 'a schema must be an object');
  const defs: Record<string, unknown> = {};
  for (const key of ['$defs', 'definitions'] as const) {
    const given = schema[key];
    if (given === undefined) continue;
    if (!isObject(given)) throw new UnsupportedSchemaError(`${path}.${key}`, 'must be an object of schemas');
    for (const [name, def] of Object.entries(given))
      defs[name] = convert(def, `${path}.${key}.${name}`, defs);
  }
  const { $defs: _, definitions: __, ...root } = schema;
  const out = convert(root, path, defs);
  return Object.keys(defs).length > 0 ? { ...out, $defs: defs } : out;
}

function convert(schema: unknown, path: string, defs: Record<string, unknown>): Out {
  if (schema === true) return ANY_VALUE;
  if (!isObject(schema)) throw new UnsupportedSchemaError(path, 'a schema must be an object or true');
  for (const key of Object.keys(schema)) {
    if (ANNOTATIONS.has(key) || TYPED_KEYWORDS.has(key)) continue;
    if (['type', 'enum', 'const', 'anyOf', 'oneOf', '$ref'].includes(key)) continue;
    if ((key === '$defs' || key === 'definitions') && path.includes('.')) {
      throw new UnsupportedSchemaError(`${path}.${key}`, 'definitions are supported at the root only');
    }
    throw new UnsupportedSchemaError(`${path}.${key}`, `the keyword '${key}' is not supported`);
  }
  const annotations = schema.description === undefined ? {} : { description: schema.description };
  if (schema.$ref !== undefined) {
    const ref = schema.$ref;
    const name = typeof ref === 'string' ? /^#\/(?:\$defs|definitions)\/([^/]+)$/.exec(ref)?.[1] : undefined;
    if (
      name === undefined ||
      !(name in defs) ||
      Object.keys(schema).some((k) => k !== '$ref' && !ANNOTATIONS.has(k))
    ) {
      throw new UnsupportedSchemaError(
        `${path}.$ref`,
        "only a reference to a root '#/$defs/NAME' or '#/definitions/NAME', alone, is supported",
      );
    }
    return { $ref: `#/$defs/${name}`, ...annotations };
  }
  if (schema.const !== undefined) return { const: literal(schema.const, `${path}.const`), ...annotations };
  if (schema.enum !== undefined) {
    if (!Array.isArray(schema.enum) || schema.enum.length === 0)
      throw new UnsupportedSchemaError(`${path}.enum`, 'must be a non-empty array');
    return { enum: schema.enum.map((v, i) => literal(v, `${path}.enum.${i}`)), ...annotations };
  }
  for (const key of ['anyOf', 'oneOf'] as const) {
    const alternatives = schema[key];
    if (alternatives === undefined) continue;
    if (!Array.isArray(alternatives) || alternatives.length === 0)
      throw new UnsupportedSchemaError(`${path}.${key}`, 'must be a non-empty array of schemas');
    if (schema.type !== undefined || schema[key === 'anyOf' ? 'oneOf' : 'anyOf'] !== undefined) {
      throw new UnsupportedSchemaError(
        `${path}.${key}`,
        `${key} beside type or another combinator is not supported`,
      );
    }
    // The grammar produces one alternative; for oneOf, alternatives must not overlap (the schema's job).
    return { oneOf: alternatives.map((s, i) => convert(s, `${path}.${key}.${i}`, defs)), ...annotations };
  }
  const types = typesOf(schema, path);
  if (types.length === 0) return ANY_VALUE;
  const each = types.map((type) => forType(type, schema, path, defs));
  return each.length === 1 ? { ...each[0], ...annotations } : { oneOf: each, ...annotations };
}

function typesOf(schema: Record<string, unknown>, path: string): TypeName[] {
  const given = schema.type;
  if (given === undefined) {
    // No type: what the keywords imply (JSON Schema would allow any other type besides; the grammar
    // picks the implied one, which matches).
    const implied = TYPES.filter((t) => KEYWORDS[t].some((k) => schema[k] !== undefined));
    return implied.length === 1 ? implied : implied.length === 0 ? [] : (implied as TypeName[]);
  }
  const list = Array.isArray(given) ? given : [given];
  for (const [i, t] of list.entries()) {
    if (!TYPES.includes(t as TypeName)) {
      const at = Array.isArray(given) ? `${path}.type.${i}` : `${path}.type`;
      throw new UnsupportedSchemaError(at, `unknown type ${JSON.stringify(t)}`);
    }
  }
  // integer is a number: a list with both keeps number.
  const unique = [...new Set(list as TypeName[])];
  return unique.includes('number') ? unique.filter((t) => t !== 'integer') : unique;
}

function forType(
  type: TypeName,
  schema: Record<string, unknown>,
  path: string,
  defs: Record<string, unknown>,
): Out {
  const at = (key: string) => `${path}.${key}`;
  const count = (key: string): number | undefined => {
    const v = schema[key];
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0)
      throw new UnsupportedSchemaError(at(key), 'must be a non-negative integer');
    return v;
  };
  switch (type) {
    case 'string': {
      const format = schema.format;
      if (format !== undefined) {
        if (typeof format !== 'string' || !STRING_FORMATS.has(format)) {
          throw new UnsupportedSchemaError(
            at('format'),
            `only the formats ${[...STRING_FORMATS].join(', ')} are supported`,
          );
        }
        if (schema.minLength !== undefined || schema.maxLength !== undefined) {
          throw new UnsupportedSchemaError(
            at('format'),
            'format with minLength or maxLength is not supported',
          );
        }
        return { type, format };
      }
      const bounds = { minLength: count('minLength'), maxLength: count('maxLength') };
      return { type, ...defined(bounds) };
    }
    case 'object': {
      const properties = schema.properties;
      if (properties !== undefined && !isObject(properties))
        throw new UnsupportedSchemaError(at('properties'), 'must be an object of schemas');
      const converted = Object.fromEntries(
        Object.entries(properties ?? {}).map(([k, s]) => [k, convert(s, `${path}.properties.${k}`, defs)]),
      );
      const required = schema.required;
      if (required !== undefined) {
        if (!Array.isArray(required))
          throw new UnsupportedSchemaError(at('required'), 'must be an array of names');
        for (const name of required) {
          if (typeof name !== 'string' || !(name in converted)) {
            throw new UnsupportedSchemaError(
              at('required'),
              `${JSON.stringify(name)} is required but not in properties (undeclared properties are not generated)`,
            );
          }
        }
      }
      const extra = schema.additionalProperties;
      // Without properties an object is open (JSON Schema's default); with them, the grammar writes
      // the declared ones only, which every schema that allows more also accepts.
      const additionalProperties =
        extra === undefined
          ? properties === undefined
          : extra === true || extra === false
            ? extra
            : convert(extra, at('additionalProperties'), defs);
      const min = count('minProperties');
      const max = count('maxProperties');
      const declared = Object.keys(converted).length;
      if (max !== undefined && max < declared) {
        throw new UnsupportedSchemaError(
          at('maxProperties'),
          `is below the ${declared} declared properties, which are all generated`,
        );
      }
      if (min !== undefined && min > declared && additionalProperties === false) {
        throw new UnsupportedSchemaError(
          at('minProperties'),
          `asks for more than the ${declared} allowed properties`,
        );
      }
      return {
        type,
        properties: converted,
        additionalProperties,
        ...defined({ minProperties: min, maxProperties: max }),
      };
    }
    case 'array': {
      const items = schema.items;
      if (items === false) throw new UnsupportedSchemaError(at('items'), 'items: false is not supported');
      const prefix = schema.prefixItems;
      if (prefix !== undefined && !Array.isArray(prefix))
        throw new UnsupportedSchemaError(at('prefixItems'), 'must be an array of schemas');
      return {
        type,
        ...(items !== undefined ? { items: convert(items, at('items'), defs) } : {}),
        ...(prefix
          ? { prefixItems: prefix.map((s, i) => convert(s, `${path}.prefixItems.${i}`, defs)) }
          : {}),
        ...defined({ minItems: count('minItems'), maxItems: count('maxItems') }),
      };
    }
    default:
      return { type };
  }
}

function literal(value: unknown, path: string): string | number | boolean | null {
  if (value === null || ['string', 'number', 'boolean'].includes(typeof value)) return value as string;
  throw new UnsupportedSchemaError(path, 'only string, number, boolean and null values are supported');
}

function defined(o: Record<string, number | undefined>): Record<string, number> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Record<string, number>;
}
