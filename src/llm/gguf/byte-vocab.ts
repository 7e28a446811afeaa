/**
 * The byte-level vocabulary of the tiny model: token id b (0..255) is byte b, spelled with GPT-2's
 * byte-to-unicode table (printable bytes stand for themselves, the rest are shifted to U+0100 and up)
 * because llama.cpp's "gpt2" BPE tokenizer looks pieces up by that spelling. With no merges every
 * UTF-8 byte becomes exactly one token, so any text round-trips and token counts equal byte counts.
 */

/** Spelling of each byte in GPT-2's reversible byte-to-unicode table. */
export function gpt2ByteSpellings(): string[] {
  const printable = (b: number) =>
    (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const out: string[] = [];
  let shifted = 0;
  for (let b = 0; b < 256; b++) {
    out.push(String.fromCodePoint(printable(b) ? b : 256 + shifted++));
  }
  return out;
}

/** Special tokens follow the 256 byte tokens, in this order. */
export const SPECIAL_TOKENS = ['<s>', '</s>', '<|im_start|>', '<|im_end|>'] as const;

export const BYTE_VOCAB = {
  bos: 256,
  eos: 257,
  imStart: 258,
  imEnd: 259,
  size: 256 + SPECIAL_TOKENS.length,
} as const;

/** llama.cpp token types: 1 normal, 3 control. */
const NORMAL = 1;
const CONTROL = 3;

export function byteVocab(): { tokens: string[]; types: number[] } {
  const tokens = [...gpt2ByteSpellings(), ...SPECIAL_TOKENS];
  const types = tokens.map((_, i) => (i < 256 ? NORMAL : CONTROL));
  return { tokens, types };
}

/** ChatML, whose markers are the special tokens above; also recognised by node-llama-cpp. */
export const CHATML_TEMPLATE =
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}" +
  "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
