import { describe, expect, it } from 'vitest';
import { sampleToken } from '../src/index';

const rng = (values: number[]) => {
  let i = 0;
  return () => values[i++ % values.length];
};

describe('sampling', () => {
  it('greedy takes the arg-max; the repetition penalty follows Hugging Face (divide positive, multiply negative)', () => {
    expect(sampleToken(Float32Array.from([0.1, 2, 1.9]), [], {}, Math.random)).toBe(1);
    // token 1 was seen: 2 / 1.2 = 1.67 < 1.9
    expect(
      sampleToken(Float32Array.from([0.1, 2, 1.9]), [1], { repetitionPenalty: 1.2 }, Math.random),
    ).toBe(2);
    const neg = Float32Array.from([-1, -2]);
    sampleToken(neg, [0], { repetitionPenalty: 2 }, Math.random);
    expect(neg[0]).toBe(-2);
  });

  it('samples from the temperature softmax, restricted by top-k and top-p', () => {
    const logits = () => Float32Array.from([Math.log(0.5), Math.log(0.3), Math.log(0.2)]);
    // probabilities 0.5, 0.3, 0.2: u = 0.6 falls in the second bucket
    expect(sampleToken(logits(), [], { temperature: 1 }, rng([0.6]))).toBe(1);
    expect(sampleToken(logits(), [], { temperature: 1 }, rng([0.95]))).toBe(2);
    // top-k 1 leaves only the best token
    expect(sampleToken(logits(), [], { temperature: 1, topK: 1 }, rng([0.99]))).toBe(0);
    // top-p 0.7 keeps 0.5 + 0.3 (renormalised 0.625 / 0.375): u = 0.9 → token 1, never token 2
    expect(sampleToken(logits(), [], { temperature: 1, topP: 0.7 }, rng([0.9]))).toBe(1);
    // a low temperature sharpens towards the best token
    expect(sampleToken(logits(), [], { temperature: 0.01 }, rng([0.99]))).toBe(0);
    expect(() => sampleToken(logits(), [], { temperature: 0, greedy: false }, Math.random)).toThrow(
      /temperature must be positive/,
    );
  });
});
