import { writeFile } from 'node:fs/promises';
import * as vega from 'vega';
import { compile } from 'vega-lite';

/** Writes a line chart of training (and validation) loss as SVG. */
export async function writeLossPlot(
  path: string,
  points: { step: number; loss: number; series: string }[],
  title: string,
): Promise<void> {
  const spec = compile({
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title,
    width: 640,
    height: 320,
    data: { values: points },
    mark: { type: 'line', point: points.length < 60 },
    encoding: {
      x: { field: 'step', type: 'quantitative', title: 'step' },
      y: { field: 'loss', type: 'quantitative', title: 'loss', scale: { zero: false } },
      color: { field: 'series', type: 'nominal', title: null },
    },
  } as never).spec;
  const view = new vega.View(vega.parse(spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  await writeFile(path, svg);
}
