import { Tokenizer as HFTokenizer } from '@huggingface/tokenizers';

/** The model's tokenizer (tokenizer.json + tokenizer_config.json through @huggingface/tokenizers). */
export class Tokenizer {
  private readonly inner: HFTokenizer;
  readonly bosId?: number;
  readonly eosId: number;
  readonly padId?: number;
  readonly vocabSize: number;

  constructor(tokenizerJson: object, tokenizerConfig: object) {
    this.inner = new HFTokenizer(tokenizerJson, tokenizerConfig);
    const vocab = (tokenizerJson as { model?: { vocab?: Record<string, number> | unknown[] } })
      .model?.vocab;
    const cfg = tokenizerConfig as Record<string, unknown>;
    const idOf = (token: unknown) => {
      const t =
        typeof token === 'string' ? token : (token as { content?: string } | undefined)?.content;
      if (t === undefined) return undefined;
      const ids = this.inner.encode(t, { add_special_tokens: false }).ids;
      return ids.length === 1 ? ids[0] : undefined;
    };
    this.bosId = idOf(cfg.bos_token);
    this.eosId = idOf(cfg.eos_token) ?? 2;
    this.padId = idOf(cfg.pad_token);
    this.vocabSize = Array.isArray(vocab) ? vocab.length : Object.keys(vocab ?? {}).length;
  }

  /** Token ids; with addSpecialTokens (default) the tokenizer's own specials (BOS for LLaMA). */
  encode(text: string, opts: { addSpecialTokens?: boolean } = {}): number[] {
    return this.inner.encode(text, { add_special_tokens: opts.addSpecialTokens ?? true }).ids;
  }

  decode(ids: number[], opts: { skipSpecialTokens?: boolean } = {}): string {
    return this.inner.decode(ids, { skip_special_tokens: opts.skipSpecialTokens ?? true });
  }
}
