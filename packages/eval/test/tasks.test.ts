import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FormatError } from '@edkm/core';
import { describe, expect, it } from 'vitest';
import { MC_TASKS, type McTaskName, evaluate, hellaswagPreprocess, loadTask } from '../src/index';
import { FakeModel, PieceTokenizer, prefixHash } from './fake';

const fx = (p: string) => join(__dirname, 'fixtures', p);
const ctx = (d: { requests: { context: string }[] }) => d.requests.map((r) => r.context);
const conts = (d: { requests: { continuation: string }[] }) =>
  d.requests.map((r) => r.continuation);

describe('PIQA', () => {
  it('original release: rows + labels file found beside them', () => {
    const docs = loadTask('piqa', fx('piqa/valid.jsonl'));
    expect(docs.map((d) => d.gold)).toEqual([0, 0, 1]);
    const egg = docs[1];
    expect(ctx(egg)).toEqual([
      'Question: To separate egg whites from the yolk using a water bottle, you should\nAnswer:',
      'Question: To separate egg whites from the yolk using a water bottle, you should\nAnswer:',
    ]);
    expect(conts(egg)).toEqual([
      ' Squeeze the water bottle and press it against the yolk. Release, which creates suction and lifts the yolk.',
      ' Place the water bottle and press it against the yolk. Keep pushing, which creates suction and lifts the yolk.',
    ]);
    expect(egg.choiceLengths).toEqual([106, 109]); // len(sol), without the delimiter
    expect(egg.source).toMatch(/valid\.jsonl: row 2 \(line 2\)$/);
    expect(conts(docs[2])).toEqual([' Pour it onto a plate', ' Pour it into a jar']);
  });
  it('Hugging Face form (label in the row); limit', () => {
    const [d] = loadTask('piqa', fx('piqa/piqa-hf.jsonl'));
    expect(d.gold).toBe(0);
    expect(ctx(d)[0]).toBe('Question: How to make tissue paper window decorations?\nAnswer:');
    expect(loadTask('piqa', fx('piqa/valid.jsonl'), { limit: 2 })).toHaveLength(2);
  });
});

describe('Winogrande (partial scoring)', () => {
  it('the option completes the context; the rest of the sentence is the shared continuation', () => {
    const docs = loadTask('winogrande', fx('winogrande/dev.jsonl'));
    expect(docs.map((d) => d.gold)).toEqual([0, 1, 1, 0, 0, 1]);
    expect(ctx(docs[0])).toEqual([
      "The trophy doesn't fit into the brown suitcase because the trophy",
      "The trophy doesn't fit into the brown suitcase because the suitcase",
    ]);
    expect(conts(docs[0])).toEqual([' is too large.', ' is too large.']);
    expect(ctx(docs[4])).toEqual([
      'Sarah was a much better surgeon than Maria so Sarah',
      'Sarah was a much better surgeon than Maria so Maria',
    ]);
    expect(conts(docs[4])).toEqual([
      ' always got the harder cases.',
      ' always got the harder cases.',
    ]);
  });
});

describe('ARC', () => {
  it('original nested JSONL, letter and numeric labels', () => {
    const docs = loadTask('arc_challenge', fx('arc/ARC-Challenge-Dev.jsonl'));
    expect(docs.map((d) => d.gold)).toEqual([0, 1, 0]);
    expect(ctx(docs[0])[0]).toBe(
      'Question: George wants to warm his hands quickly by rubbing them. Which skin surface will produce the most heat?\nAnswer:',
    );
    expect(conts(docs[0])).toEqual([
      ' dry palms',
      ' wet palms',
      ' palms covered with oil',
      ' palms covered with lotion',
    ]);
    expect(docs[0].choiceLengths).toEqual([9, 9, 22, 25]);
  });
  it('Hugging Face flat form', () => {
    const docs = loadTask('arc_easy', fx('arc/arc-easy-hf.jsonl'));
    expect(docs.map((d) => d.gold)).toEqual([0, 2]);
    expect(ctx(docs[1])[0]).toBe(
      'Question: A student riding a bicycle observes that it moves faster on a smooth road than on a rough road. This happens because the smooth road has\nAnswer:',
    );
    expect(conts(docs[1])).toEqual([
      ' less gravity',
      ' more gravity',
      ' less friction',
      ' more friction',
    ]);
  });
});

describe('HellaSwag', () => {
  it('preprocess: strip, " [title]" → ". ", drop [brackets], double spaces → one', () => {
    expect(hellaswagPreprocess('  a [title] B [step] c  [x]d ')).toBe('a. B c d');
  });
  it('ActivityNet rows: activity label, ctx_a, ctx_b capitalised', () => {
    const docs = loadTask('hellaswag', fx('hellaswag/hellaswag_val.jsonl'));
    expect(docs.map((d) => d.gold)).toEqual([3, 3, 2]);
    expect(ctx(docs[0])[0]).toBe('Roof shingle removal: A man is sitting on a roof. He');
    expect(conts(docs[0])).toEqual([
      ' is using wrap to wrap a pair of skis.',
      ' is ripping level tiles off.',
      " is holding a rubik's cube.",
      ' starts pulling up roofing on a roof.',
    ]);
    expect(ctx(docs[1])[0]).toBe(
      'Clean and jerk: A lady walks to a barbell. She bends down and grabs the pole. The lady',
    );
  });
  it('WikiHow rows: markup removed', () => {
    const d = loadTask('hellaswag', fx('hellaswag/hellaswag_val.jsonl'))[2];
    expect(ctx(d)[0]).toBe(
      'Youth: How to make up a good excuse for your homework not being finished. Blame technology. One of the easiest and most believable excuses is simply blaming technology. You can say your computer crashed, your printer broke, your internet was down, or any number of problems.',
    );
    expect(conts(d)[0]).toBe(
      " Your excuses will hardly seem believable. This doesn't mean you are lying, just only that you don't have all the details of how your computer ran at the time of the accident.",
    );
    expect(conts(d)[2]).toBe(
      ' Most people, your teacher included, have experienced setbacks due to technological problems. This is a great excuse if you had a paper you needed to type and print.',
    );
    expect(d.choiceLengths[2]).toBe(conts(d)[2].length - 1);
  });
});

describe('BoolQ', () => {
  it('original release (answer: bool) and SuperGLUE (label: 0/1)', () => {
    const docs = loadTask('boolq', fx('boolq/dev.jsonl'));
    expect(docs.map((d) => d.gold)).toEqual([1, 0]);
    expect(conts(docs[0])).toEqual([' no', ' yes']);
    expect(docs[0].choiceLengths).toEqual([2, 3]);
    const c = ctx(docs[0])[0];
    expect(c.startsWith('Persian (/ˈpɜːrʒən, -ʃən/), also known by its endonym Farsi (فارسی')).toBe(
      true,
    );
    expect(
      c.endsWith(
        'evolved from the Aramaic alphabet.\nQuestion: do iran and afghanistan speak the same language?\nAnswer:',
      ),
    ).toBe(true);
    const [sg] = loadTask('boolq', fx('boolq/super_glue-val.jsonl'));
    expect(sg.gold).toBe(1);
    expect(ctx(sg)[0]).toBe(
      "American entry into Canada by land -- Persons driving into Canada must have their vehicle's registration document and proof of insurance.\nQuestion: can u drive in canada with us license?\nAnswer:",
    );
  });
});

describe('malformed task files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'edkm-eval-'));
  const file = (name: string, text: string) => {
    const p = join(dir, name);
    writeFileSync(p, text);
    return p;
  };
  const ok = '{"context": "Q", "choices": ["a", "b"], "gold": 1}';
  const cases: [string, McTaskName, string, RegExp][] = [
    [
      'bad-json.jsonl',
      'multiple_choice',
      `${ok}\n\n{"context": "Q",`,
      /bad-json\.jsonl: row 2 \(line 3\): bad JSON/,
    ],
    [
      'missing.jsonl',
      'multiple_choice',
      `${ok}\n{"context": "Q", "gold": 0}`,
      /missing\.jsonl: row 2 \(line 2\): missing field "choices"/,
    ],
    [
      'type.jsonl',
      'multiple_choice',
      '{"context": 3, "choices": ["a"], "gold": 0}',
      /type\.jsonl: row 1 \(line 1\): field "context" must be a string, got number/,
    ],
    [
      'choices.jsonl',
      'multiple_choice',
      '{"context": "Q", "choices": ["a", 2], "gold": 0}',
      /field "choices" must be an array of strings/,
    ],
    [
      'gold.jsonl',
      'multiple_choice',
      `${ok}\n{"context": "Q", "choices": ["a", "b"], "gold": 2}`,
      /gold\.jsonl: row 2 \(line 2\): gold 2 is out of range for 2 choices/,
    ],
    [
      'goldf.jsonl',
      'multiple_choice',
      '{"context": "Q", "choices": ["a"], "gold": 0.5}',
      /field "gold" must be an integer/,
    ],
    ['array.jsonl', 'multiple_choice', '[1, 2]', /array\.jsonl: row 1: expected a JSON object/],
    [
      'wino.jsonl',
      'winogrande',
      '{"sentence": "no blank", "option1": "a", "option2": "b", "answer": "1"}',
      /wino\.jsonl: row 1 \(line 1\): "sentence" has no "_" blank/,
    ],
    [
      'wino-test.jsonl',
      'winogrande',
      '{"sentence": "a _ b", "option1": "a", "option2": "b", "answer": ""}',
      /missing field "answer" \(the test split has no labels\)/,
    ],
    [
      'arc.jsonl',
      'arc_easy',
      '{"question": "Q", "choices": {"text": ["x", "y"], "label": ["A", "B"]}, "answerKey": "E"}',
      /answerKey "E" is not among the labels \["A","B"\]/,
    ],
    [
      'hs.jsonl',
      'hellaswag',
      '{"activity_label": "x", "ctx_a": "a", "ctx_b": "b", "endings": ["e"], "label": 4}',
      /hs\.jsonl: row 1 \(line 1\): gold 4 is out of range for 1 choices/,
    ],
    [
      'bq.jsonl',
      'boolq',
      '{"question": "q", "passage": "p", "answer": "yes"}',
      /field "answer" must be a boolean/,
    ],
    [
      'piqa.jsonl',
      'piqa',
      '{"goal": "g", "sol1": "a", "sol2": "b"}',
      /rows have no "label" and there is no labels file .*piqa-labels\.lst/,
    ],
  ];
  it.each(cases)('%s', (name, task, text, message) => {
    const p = file(name, text);
    expect(() => loadTask(task, p)).toThrow(FormatError);
    expect(() => loadTask(task, p)).toThrow(message);
  });
  it('a labels file that does not match the rows', () => {
    const p = file('p.jsonl', '{"goal": "g", "sol1": "a", "sol2": "b"}\n');
    file('p-labels.lst', '0\n1\n');
    expect(() => loadTask('piqa', p)).toThrow(/p-labels\.lst: 2 labels for 1 rows/);
    file('q-labels.lst', 'x\n');
    expect(() => loadTask('piqa', p, { labelsPath: join(dir, 'q-labels.lst') })).toThrow(
      /q-labels\.lst: line 1: expected an integer label/,
    );
  });
  it('missing file and unknown task', async () => {
    expect(() => loadTask('piqa', join(dir, 'nope.jsonl'))).toThrow(/cannot read .*nope\.jsonl/);
    const m = new FakeModel(new PieceTokenizer(['a']), prefixHash(4));
    await expect(evaluate({ model: m, task: 'mmlu' as McTaskName, dataPath: 'x' })).rejects.toThrow(
      /unknown task "mmlu"/,
    );
  });
});

describe('every task evaluates end to end on its fixture', () => {
  const files: Record<McTaskName, string> = {
    piqa: 'piqa/valid.jsonl',
    winogrande: 'winogrande/dev.jsonl',
    arc_easy: 'arc/arc-easy-hf.jsonl',
    arc_challenge: 'arc/ARC-Challenge-Dev.jsonl',
    hellaswag: 'hellaswag/hellaswag_val.jsonl',
    boolq: 'boolq/dev.jsonl',
    multiple_choice: '../../../../data/eval/alpaca-mc.jsonl',
  };
  const chars = [
    ...new Set('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ .,:?\n\'"'.split('')),
  ];
  const tok = new PieceTokenizer([...chars, ' the', ' a', 'Question', 'Answer', ' yes', ' no']);
  it.each(MC_TASKS)('%s', async (task) => {
    const model = new FakeModel(tok, prefixHash(tok.vocabSize), 1024);
    const progress: string[] = [];
    const r = await evaluate({
      model,
      task,
      dataPath: fx(files[task]),
      limit: 5,
      onProgress: (p) => progress.push(`${p.phase} ${p.done}/${p.total}`),
    });
    expect(r.n).toBeGreaterThan(0);
    expect(r.n).toBeLessThanOrEqual(5);
    expect(r.acc).toBeGreaterThanOrEqual(0);
    expect(progress.at(-1)).toMatch(/^score (\d+)\/\1$/);
    expect(JSON.parse(JSON.stringify(r))).toMatchObject({ task, n: r.n, acc: r.acc });
  });
});
