import { describe, expect, it } from 'vitest';
import { dawnFlags } from '../src/index';

describe("Dawn's flags in Node (dawnFlags)", () => {
  it('passes the given flags through when nothing is added', () => {
    expect(dawnFlags('')).toEqual([]);
    expect(dawnFlags(' disable-dawn-features=timestamp_quantization  ')).toEqual([
      'disable-dawn-features=timestamp_quantization',
    ]);
  });

  it('adds allow_unsafe_apis and disable_robustness as one enable-dawn-features flag', () => {
    expect(dawnFlags('', { unsafeApis: true, robust: false })).toEqual([
      'enable-dawn-features=allow_unsafe_apis,disable_robustness',
    ]);
    expect(dawnFlags('', { robust: true })).toEqual([]);
  });

  it('merges into an enable-dawn-features flag already given, without repeating a toggle', () => {
    expect(
      dawnFlags('disable-dawn-features=timestamp_quantization enable-dawn-features=foo', {
        robust: false,
      }),
    ).toEqual([
      'disable-dawn-features=timestamp_quantization',
      'enable-dawn-features=foo,disable_robustness',
    ]);
    expect(
      dawnFlags('enable-dawn-features=disable_robustness', { robust: false, unsafeApis: true }),
    ).toEqual(['enable-dawn-features=disable_robustness,allow_unsafe_apis']);
  });
});
