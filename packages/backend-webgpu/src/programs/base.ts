import type { WebGPUProgram } from '@tensorflow/tfjs-backend-webgpu';
import { webgpu_util } from '@tensorflow/tfjs-backend-webgpu';

/** Which output dimensions each dispatch axis walks. */
export interface DispatchLayout {
  x: number[];
  y?: number[];
  z?: number[];
}

/**
 * The fields every WebGPUProgram of this plugin declares, set once: the output shape, a dispatch
 * grid, the dispatch layout (default: all output dimensions flattened into x, as
 * webgpu_util.flatDispatchLayout), 256-wide workgroups and no `size` uniform unless a subclass
 * says otherwise. A subclass adds its inputs, shader key and WGSL (and any uniforms).
 */
export abstract class EdkmProgram implements WebGPUProgram {
  outputShape: number[];
  dispatchLayout: DispatchLayout;
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [256, 1, 1];
  size = false;
  abstract variableNames: string[];
  abstract shaderKey: string;
  abstract getUserCode(): string;

  constructor(
    outputShape: number[],
    dispatch: [number, number, number],
    dispatchLayout: DispatchLayout = webgpu_util.flatDispatchLayout(outputShape),
  ) {
    this.outputShape = outputShape;
    this.dispatchLayout = dispatchLayout;
    this.dispatch = dispatch;
  }
}

const FLAT_WORKGROUP: [number, number, number] = [64, 1, 1];

/** A flat program: one invocation per output element, `index` is that element. */
export abstract class FlatProgram extends EdkmProgram {
  override workgroupSize: [number, number, number] = [...FLAT_WORKGROUP];
  override size = true;
  outputComponent?: number;

  constructor(outputShape: number[]) {
    const layout = webgpu_util.flatDispatchLayout(outputShape);
    super(outputShape, webgpu_util.computeDispatch(layout, outputShape, FLAT_WORKGROUP), layout);
  }

  /** n/4 invocations of 256, each reading and writing four of the n elements as a vec4. */
  protected fourPerInvocation(n: number): void {
    this.outputComponent = 4;
    this.workgroupSize = [256, 1, 1];
    this.dispatchLayout = webgpu_util.flatDispatchLayout([n / 4]);
    this.dispatch = webgpu_util.computeDispatch(this.dispatchLayout, [n / 4], this.workgroupSize);
  }
}
