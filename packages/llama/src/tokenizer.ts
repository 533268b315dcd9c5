import { Tokenizer as HFTokenizer } from '@huggingface/tokenizers';

/** Texts at least this long are encoded in pieces when the tokenizer allows it (see `encode`). */
const LONG_TEXT = 16_384;
/** Pieces of about this many characters, each starting at a line break. */
const PIECE = 1024;

/**
 * Whether no token can span a line break: a BPE model without a normalizer whose vocabulary and
 * added tokens have no token containing "\n" (a merge yields a vocabulary token, so none can join
 * across a line break; with byte fallback "\n" is its own byte token).
 */
function lineBreaksSplit(json: object): boolean {
  const j = json as {
    normalizer?: unknown;
    model?: { type?: string; vocab?: Record<string, number> | [string, number][] };
    added_tokens?: { content?: string }[];
  };
  if (j.normalizer != null || j.model?.type !== 'BPE' || !j.model.vocab) return false;
  const tokens = Array.isArray(j.model.vocab)
    ? j.model.vocab.map((v) => v[0])
    : Object.keys(j.model.vocab);
  if (tokens.some((t) => t.includes('\n'))) return false;
  return !(j.added_tokens ?? []).some((t) => t.content?.includes('\n'));
}

/** The model's tokenizer (tokenizer.json + tokenizer_config.json through @huggingface/tokenizers). */
export class Tokenizer {
  private readonly inner: HFTokenizer;
  /** Line breaks split the text into independent pieces (checked once on a sample, see encode). */
  private byLines: boolean | undefined;
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
    if (!lineBreaksSplit(tokenizerJson)) this.byLines = false;
  }

  /**
   * Token ids; with addSpecialTokens (default) the tokenizer's own specials (BOS for LLaMA).
   *
   * A long text without special tokens (a training corpus) is encoded in pieces of about 1,024
   * characters cut before a line break, when no token can span a line break (`lineBreaksSplit`):
   * @huggingface/tokenizers runs BPE over a text with no pre-tokenizer split as one word, which
   * took 44 s for tinyshakespeare under load against 5 s in pieces. Each piece after the first
   * starts with "\n", so the pre-tokenizer's start-of-text "▁" before it is a token of its own,
   * dropped. The result is the same ids; the first long text checks it on a sample (its first
   * pieces, whole against in pieces) and encodes whole from then on if they differ.
   */
  encode(text: string, opts: { addSpecialTokens?: boolean } = {}): number[] {
    const addSpecialTokens = opts.addSpecialTokens ?? true;
    if (!addSpecialTokens && text.length >= LONG_TEXT && this.byLines !== false) {
      const cut = text.indexOf('\n', 4 * PIECE);
      if (this.byLines === undefined && cut > 0) {
        const sample = text.slice(0, cut);
        const whole = this.whole(sample, false);
        const pieces = this.inPieces(sample);
        this.byLines = whole.length === pieces.length && whole.every((id, i) => id === pieces[i]);
      }
      if (this.byLines) return this.inPieces(text);
    }
    return this.whole(text, addSpecialTokens);
  }

  private whole(text: string, addSpecialTokens: boolean): number[] {
    return this.inner.encode(text, { add_special_tokens: addSpecialTokens }).ids;
  }

  private inPieces(text: string): number[] {
    const ids: number[] = [];
    for (let start = 0; start < text.length; ) {
      let end = text.indexOf('\n', start + PIECE);
      if (end < 0) end = text.length;
      const piece = this.whole(text.slice(start, end), false);
      for (let i = start === 0 ? 0 : 1; i < piece.length; i++) ids.push(piece[i]);
      start = end;
    }
    return ids;
  }

  decode(ids: number[], opts: { skipSpecialTokens?: boolean } = {}): string {
    return this.inner.decode(ids, { skip_special_tokens: opts.skipSpecialTokens ?? true });
  }
}

/**
 * Feeds generated tokens to `onText` as text, decoding the continuation so far at each token:
 * byte-fallback tokens only make text together, so text is passed on once the tail decodes
 * cleanly. `finish()` passes on the rest and returns the whole text.
 */
export function textStream(
  tokenizer: Tokenizer,
  onText?: (text: string) => void,
): { ids: number[]; onToken: (id: number) => void; finish: () => string } {
  const ids: number[] = [];
  let shown = '';
  return {
    ids,
    onToken: (id: number) => {
      ids.push(id);
      if (!onText) return;
      const now = tokenizer.decode(ids);
      if (now.length > shown.length && !now.endsWith('\uFFFD')) {
        onText(now.slice(shown.length));
        shown = now;
      }
    },
    finish: (): string => {
      const all = tokenizer.decode(ids);
      if (onText && all.length > shown.length) onText(all.slice(shown.length));
      return all;
    },
  };
}
