import { existsSync } from 'node:fs';
import { FormatError, InvalidArgumentError, assertIntInRange } from '@edkm/core';
import type { LoglikelihoodRequest } from './loglikelihood';
import { type Row, has, inRange, int, obj, readRows, readText, str, strArray, where } from './rows';
import { pyCapitalize, pyLen, pyStrip } from './text';

export type Metric = 'acc' | 'acc_norm';

/** One evaluation document as the harness builds it: a request per choice and the gold index. */
export interface McDoc {
  requests: LoglikelihoodRequest[];
  gold: number;
  /**
   * The divisors of `acc_norm`: the harness's `len(choice)` in characters (code points) of each
   * entry of `doc_to_choice`, without the target delimiter.
   */
  choiceLengths: number[];
  /** "file: row n" for messages. */
  source: string;
}

export interface McTaskSpec {
  /** The metrics the harness's task YAML reports. */
  metrics: readonly Metric[];
  /** Builds the documents of a task file's rows (`labels`: PIQA's separate label file). */
  docs(rows: Row[], labels?: number[]): McDoc[];
}

/** The harness's `output_type: multiple_choice` with a single input: choices in the continuation. */
function choicesDoc(
  r: Row,
  context: string,
  choices: string[],
  gold: number,
  delimiter = ' ',
): McDoc {
  if (choices.length === 0) throw new FormatError(`${where(r)}: no choices`);
  return {
    requests: choices.map((c) => ({ context, continuation: delimiter + c })),
    gold: inRange(r, 'gold', gold, choices.length),
    choiceLengths: choices.map(pyLen),
    source: where(r),
  };
}

/** HellaSwag's `preprocess` (lm-evaluation-harness `tasks/hellaswag/utils.py`). */
export function hellaswagPreprocess(text: string): string {
  return pyStrip(text)
    .replaceAll(' [title]', '. ')
    .replace(/\[.*?\]/g, '')
    .replaceAll('  ', ' ');
}

function piqaDoc(r: Row, label?: number): McDoc {
  const gold = label ?? (has(r, 'label') ? int(r, 'label', true) : undefined);
  if (gold === undefined) {
    throw new FormatError(
      `${where(r)}: no "label" field and no labels file (e.g. valid-labels.lst)`,
    );
  }
  return choicesDoc(
    r,
    `Question: ${str(r, 'goal')}\nAnswer:`,
    [str(r, 'sol1'), str(r, 'sol2')],
    gold,
  );
}

function winograndeDoc(r: Row): McDoc {
  const sentence = str(r, 'sentence');
  const blank = sentence.indexOf('_');
  if (blank < 0) throw new FormatError(`${where(r)}: "sentence" has no "_" blank`);
  if (!has(r, 'answer') || r.value.answer === '') {
    throw new FormatError(`${where(r)}: missing field "answer" (the test split has no labels)`);
  }
  const answer = int(r, 'answer', true);
  if (answer !== 1 && answer !== 2) {
    throw new FormatError(
      `${where(r)}: "answer" must be "1" or "2", got ${JSON.stringify(r.value.answer)}`,
    );
  }
  // partial scoring: the option completes the context, the rest of the sentence is scored
  const contexts = [str(r, 'option1'), str(r, 'option2')].map((o) => sentence.slice(0, blank) + o);
  const target = pyStrip(sentence.slice(blank + 1));
  return {
    requests: contexts.map((context) => ({ context, continuation: ` ${target}` })),
    gold: answer - 1,
    choiceLengths: contexts.map(pyLen),
    source: where(r),
  };
}

function arcDoc(r: Row): McDoc {
  // the original ARC JSONL nests choices in question{stem, choices[{text,label}]}; HF has them flat
  let question: string;
  let texts: string[];
  let labels: string[];
  if (typeof r.value.question === 'object' && r.value.question !== null) {
    const q = obj(r, 'question');
    question = str(r, 'question.stem', q.stem);
    const choices = q.choices;
    if (!Array.isArray(choices)) {
      throw new FormatError(`${where(r)}: field "question.choices" must be an array`);
    }
    texts = choices.map((c, i) =>
      str(r, `question.choices[${i}].text`, obj(r, `question.choices[${i}]`, c).text),
    );
    labels = choices.map((c, i) =>
      str(r, `question.choices[${i}].label`, (c as Record<string, unknown>).label),
    );
  } else {
    question = str(r, 'question');
    const choices = obj(r, 'choices');
    texts = strArray(r, 'choices.text', choices.text);
    labels = strArray(r, 'choices.label', choices.label);
    if (texts.length !== labels.length) {
      throw new FormatError(
        `${where(r)}: ${texts.length} choice texts but ${labels.length} labels`,
      );
    }
  }
  const key = str(r, 'answerKey');
  const gold = labels.indexOf(key);
  if (gold < 0) {
    throw new FormatError(
      `${where(r)}: answerKey ${JSON.stringify(key)} is not among the labels ${JSON.stringify(labels)}`,
    );
  }
  return choicesDoc(r, `Question: ${question}\nAnswer:`, texts, gold);
}

function hellaswagDoc(r: Row): McDoc {
  const ctx = `${str(r, 'ctx_a')} ${pyCapitalize(str(r, 'ctx_b'))}`;
  return choicesDoc(
    r,
    hellaswagPreprocess(`${str(r, 'activity_label')}: ${ctx}`),
    strArray(r, 'endings').map(hellaswagPreprocess),
    int(r, 'label', true),
  );
}

function boolqDoc(r: Row): McDoc {
  let gold: number;
  if (has(r, 'answer')) {
    if (typeof r.value.answer !== 'boolean') {
      throw new FormatError(
        `${where(r)}: field "answer" must be a boolean, got ${JSON.stringify(r.value.answer)}`,
      );
    }
    gold = r.value.answer ? 1 : 0;
  } else if (typeof r.value.label === 'boolean') gold = r.value.label ? 1 : 0;
  else gold = int(r, 'label', true);
  const text = `${str(r, 'passage')}\nQuestion: ${str(r, 'question')}?\nAnswer:`;
  return choicesDoc(r, text, ['no', 'yes'], gold);
}

function genericDoc(r: Row): McDoc {
  const delimiter = has(r, 'target_delimiter') ? str(r, 'target_delimiter') : ' ';
  const choices = strArray(r, 'choices');
  return choicesDoc(r, str(r, 'context'), choices, int(r, 'gold'), delimiter);
}

const each =
  (f: (r: Row) => McDoc) =>
  (rows: Row[]): McDoc[] =>
    rows.map(f);

/** The multiple-choice tasks, formatted as lm-evaluation-harness v0.4 defines them (zero-shot). */
export const TASKS = {
  piqa: {
    metrics: ['acc', 'acc_norm'],
    docs: (rows: Row[], labels?: number[]) => rows.map((r, i) => piqaDoc(r, labels?.[i])),
  },
  winogrande: { metrics: ['acc'], docs: each(winograndeDoc) },
  arc_easy: { metrics: ['acc', 'acc_norm'], docs: each(arcDoc) },
  arc_challenge: { metrics: ['acc', 'acc_norm'], docs: each(arcDoc) },
  hellaswag: { metrics: ['acc', 'acc_norm'], docs: each(hellaswagDoc) },
  boolq: { metrics: ['acc'], docs: each(boolqDoc) },
  multiple_choice: { metrics: ['acc', 'acc_norm'], docs: each(genericDoc) },
} as const satisfies Record<string, McTaskSpec>;

export type McTaskName = keyof typeof TASKS;
export const MC_TASKS = Object.keys(TASKS) as McTaskName[];

export function isMcTask(name: string): name is McTaskName {
  return Object.hasOwn(TASKS, name);
}

/** PIQA's labels file: one integer per line (`valid-labels.lst`). */
export function readLabels(path: string): number[] {
  return readText(path)
    .split(/\r?\n/)
    .map((l, i) => ({ l: l.trim(), line: i + 1 }))
    .filter(({ l }) => l !== '')
    .map(({ l, line }) => {
      if (!/^-?\d+$/.test(l))
        throw new FormatError(
          `${path}: line ${line}: expected an integer label, got ${JSON.stringify(l)}`,
        );
      return Number(l);
    });
}

export interface LoadTaskOptions {
  /** PIQA: the labels file; default `<name>-labels.lst` next to `<name>.jsonl` when rows have no label. */
  labelsPath?: string;
  /** Only the first `limit` documents. */
  limit?: number;
}

/** Reads a task file in its original format and builds its documents. */
export function loadTask(task: McTaskName, path: string, opts: LoadTaskOptions = {}): McDoc[] {
  if (!isMcTask(task)) {
    throw new InvalidArgumentError(
      `unknown task ${JSON.stringify(task)}; known: ${MC_TASKS.join(', ')}, ppl`,
    );
  }
  let rows = readRows(path);
  let labels: number[] | undefined;
  if (task === 'piqa' && (opts.labelsPath || rows.some((r) => !has(r, 'label')))) {
    const labelsPath = opts.labelsPath ?? path.replace(/\.jsonl?$/, '') + '-labels.lst';
    if (!existsSync(labelsPath)) {
      throw new FormatError(
        `${path}: rows have no "label" and there is no labels file ${labelsPath}`,
      );
    }
    labels = readLabels(labelsPath);
    if (labels.length !== rows.length) {
      throw new FormatError(
        `${labelsPath}: ${labels.length} labels for ${rows.length} rows of ${path}`,
      );
    }
  }
  if (opts.limit !== undefined) {
    rows = rows.slice(0, assertIntInRange('limit', opts.limit, 0, Number.MAX_SAFE_INTEGER));
  }
  return TASKS[task].docs(rows, labels);
}
